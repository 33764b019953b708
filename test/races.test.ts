/**
 * Lifecycle events racing each other: passivation, revival, a child's own
 * end, stop. Each test is named after the behaviour it guarantees.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect } from "effect"
import { TestClock } from "effect/testing"
import { Dispatcher } from "../src/index.js"
import { fakeFactory, rq, type Rq, settle } from "./support/harness.js"

describe("passivation racing a revival", () => {
  it.effect("a passivated child that ends by itself as its key is revived ends only its own mailbox: later requests are answered", () =>
    Effect.gen(function*() {
      // key "a": its first child is a downstream dispatcher over fake children (it ends when its last child
      // does, which the test controls); its later ones serve slowly. Other keys serve at once.
      const inner = yield* fakeFactory((r: Rq) => r.topic)
      let incarnations = 0
      const d = yield* Dispatcher.make<Rq, string, string>({
        keyOf: (r) => r.group,
        spawn: (child) =>
          child.key !== "a"
            ? Dispatcher.serve(child, (r) => Effect.succeed(`${r.group}${r.n}`))
            : ++incarnations === 1
            ? Dispatcher.runChild(child, inner.factory)
            : Dispatcher.serve(child, (r) => Effect.as(Effect.sleep("10 millis"), `a${r.n}`))
      }, { maxChildren: 2 })
      const a1 = yield* Dispatcher.send(d, rq("a", "x", 1))
      const x = yield* inner.nextChild
      yield* x.takeAndAnswer("a1")
      yield* Dispatcher.call(d, rq("c", "", 1))
      // one synchronous step: b passivates a, a is revived at once, and a's old child ends by itself
      const b1 = yield* Dispatcher.send(d, rq("b", "", 1))
      const a2 = yield* Dispatcher.send(d, rq("a", "", 2))
      yield* x.end()
      yield* settle
      const a3 = yield* Dispatcher.send(d, rq("a", "", 3))
      yield* TestClock.adjust("100 millis")
      yield* Dispatcher.shutdown(d)
      for (const answer of [a1, b1, a2, a3]) assert.isTrue(yield* Deferred.isDone(answer), "every accepted request answered")
      assert.deepStrictEqual(yield* Deferred.await(a3), "a3")
    }).pipe(Effect.scoped))

  // real time: idle ends and passivations race as they fall, many keys cycling through a small cap
  for (const [name, options] of [
    ["maxChildren 4 and a 1 ms idleTimeToLive", { maxChildren: 4 }],
    ["maxChildren 16 and a 1 ms idleTimeToLive", { maxChildren: 16 }],
    ["a 1 ms idleTimeToLive alone", {}]
  ] as const) {
    it.live(`idle ends racing passivations and revivals lose nothing: ${name}`, () =>
      Effect.gen(function*() {
        const d = yield* Dispatcher.make<number, number>({
          keyOf: (n) => `k${n % 40}`,
          spawn: Dispatcher.serveWith((n: number) => (n % 3 === 0 ? Effect.as(Effect.sleep("1 millis"), n) : Effect.succeed(n)), {
            idleTimeToLive: "1 millis"
          })
        }, options)
        const answers: Array<Deferred.Deferred<number, Dispatcher.DispatchError>> = []
        for (let round = 0; round < 40; round++) {
          // a burst of concurrent senders, then a pause about as long as the idle time
          const sent = yield* Effect.forEach(
            Array.from({ length: 50 }, (_, i) => round * 50 + i),
            (n) => Effect.exit(Dispatcher.send(d, n)),
            { concurrency: "unbounded" }
          )
          for (const exit of sent) if (exit._tag === "Success") answers.push(exit.value)
          yield* Effect.sleep(`${round % 3} millis`)
        }
        yield* Dispatcher.shutdown(d).pipe(Effect.timeout("10 seconds"))
        let unanswered = 0
        for (const answer of answers) if (!(yield* Deferred.isDone(answer))) unanswered++
        assert.strictEqual(unanswered, 0, `${unanswered} of ${answers.length} accepted requests never answered`)
        assert.isAbove(answers.length, 0)
      }))
  }
})

describe("maxChildren is a cap at every moment", () => {
  it.effect("a synchronous burst of 30,000 new keys under maxChildren 1,000: live never exceeds the cap; the surplus is refused TooManyRequests", () =>
    Effect.gen(function*() {
      let alive = 0
      let peak = 0
      let peakLive = 0
      const d: Dispatcher.Dispatcher<number, number> = yield* Dispatcher.make<number, number>({
        keyOf: (n) => `k${n}`,
        spawn: (child) =>
          Effect.acquireRelease(
            Effect.sync(() => {
              peak = Math.max(peak, ++alive)
            }),
            () => Effect.sync(() => alive--)
          ).pipe(
            // sampled as each child starts: the dispatcher's own count, children still ending included
            Effect.andThen(Effect.map(Dispatcher.stats(d), (s) => (peakLive = Math.max(peakLive, s.live)))),
            Effect.andThen(Dispatcher.serve(child, (n) => Effect.succeed(n)))
          )
      }, { maxChildren: 1_000 })
      const keys = Array.from({ length: 30_000 }, (_, i) => i)
      const sent = yield* Effect.forEach(keys, (n) => Effect.exit(Dispatcher.send(d, n)), { concurrency: "unbounded" })
      const live = (yield* Dispatcher.stats(d)).live
      assert.isAtMost(live, 1_000)
      const refused = sent.filter((e) => e._tag === "Failure")
      for (const exit of refused) {
        const error = exit._tag === "Failure" ? Cause.squash(exit.cause) : undefined
        assert.instanceOf(error, Dispatcher.TooManyRequests)
        assert.strictEqual((error as Dispatcher.TooManyRequests).limit, "maxChildren")
      }
      // every accepted one is answered once the passivated children have made room
      for (const exit of sent) if (exit._tag === "Success") assert.isNumber(yield* Deferred.await(exit.value))
      assert.isAtMost(peak, 1_000)
      assert.isAtMost(peakLive, 1_000)
      assert.isAbove(sent.length - refused.length, 1_000, "the first thousand and the keys passivated for are served")
      assert.strictEqual(sent.length, 30_000)
    }).pipe(Effect.scoped))
})

describe("a stop at a random moment on a three-level tree with a cap at every level", () => {
  interface Leaf {
    readonly group: string
    readonly topic: string
    readonly leaf: string
    readonly n: number
  }
  // groups -> topics -> leaves, each level capped, leaves idle out fast: passivations, revivals and
  // idle ends race each other and the stop
  const tree = (seed: number) => ({
    keyOf: (r: Leaf) => r.group,
    spawn: (group: Dispatcher.ChildSpec<Leaf, number>) =>
      Dispatcher.runChild(group, {
        keyOf: (r: Leaf) => r.topic,
        spawn: (topic) =>
          Dispatcher.runChild(topic, {
            keyOf: (r: Leaf) => r.leaf,
            spawn: Dispatcher.serveWith(
              (r: Leaf) => ((r.n + seed) % 4 === 0 ? Effect.as(Effect.sleep("1 millis"), r.n) : Effect.succeed(r.n)),
              { idleTimeToLive: "2 millis" }
            )
          }, { maxChildren: 3, name: "leaves" })
      }, { maxChildren: 3, name: "topics" })
  })

  it.live("20 trials of random requests and a shutdown at a random moment: every accepted request answered, none left waiting", () =>
    Effect.gen(function*() {
      let lost = 0
      let accepted = 0
      for (let trial = 0; trial < 20; trial++) {
        let state = trial * 7919 + 1
        const random = (n: number) => {
          state = (state * 48271) % 2147483647
          return state % n
        }
        const d = yield* Dispatcher.make<Leaf, number>(tree(trial), { maxChildren: 4, name: "groups" })
        const answers: Array<Deferred.Deferred<number, Dispatcher.DispatchError>> = []
        const stopAt = 5 + random(30)
        for (let round = 0; round < 40; round++) {
          if (round === stopAt) yield* Effect.forkDetach(Dispatcher.shutdown(d))
          const batch = Array.from({ length: 1 + random(40) }, (_, i): Leaf => ({
            group: `g${random(8)}`,
            topic: `t${random(6)}`,
            leaf: `l${random(6)}`,
            n: round * 100 + i
          }))
          const sent = yield* Effect.forEach(batch, (r) => Effect.exit(Dispatcher.send(d, r)), { concurrency: "unbounded" })
          for (const exit of sent) if (exit._tag === "Success") answers.push(exit.value)
          if (random(3) === 0) yield* Effect.sleep(`${random(4)} millis`)
        }
        yield* Dispatcher.shutdown(d).pipe(Effect.timeout("10 seconds"))
        accepted += answers.length
        for (const answer of answers) if (!(yield* Deferred.isDone(answer))) lost++
      }
      assert.strictEqual(lost, 0, `${lost} of ${accepted} accepted requests were never answered`)
      assert.isAbove(accepted, 0)
    }), 60_000)
})

