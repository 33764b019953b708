/**
 * Lifecycle events racing each other: passivation, revival, a child's own
 * end, stop. Each test is named after the behaviour it guarantees.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
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
