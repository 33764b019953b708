/**
 * DESIGN.md "Options and lifecycle": idle passivation, deadlines, restart
 * backoff, the cap on children and waiting for room. All on the TestClock.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Clock, Deferred, Effect, Exit, Fiber, Queue, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { Dispatcher } from "../src/index.js"
import { errorOf, fakeGroups, fakeTopics, isDone, rq, type Rq, settle } from "./support/harness.js"

const echoServe = (options?: Dispatcher.ServeOptions): Dispatcher.Factory<Rq, string, string> => ({
  keyOf: (r) => r.group,
  spawn: (child) => Dispatcher.serve(child, (r, key) => Effect.succeed(`${key}:${r.n}`), options)
})

describe("idleTimeToLive", () => {
  it.effect("idle expiry: a served child ends after idleTimeToLive without a request", () =>
    Effect.gen(function*() {
      const d = yield* Dispatcher.make(echoServe({ idleTimeToLive: "100 millis" }))
      assert.strictEqual(yield* Dispatcher.call(d, rq("a", "", 1)), "a:1")
      yield* TestClock.adjust("60 millis")
      assert.strictEqual(yield* Dispatcher.call(d, rq("a", "", 2)), "a:2", "a request restarts the idle time")
      yield* TestClock.adjust("99 millis")
      assert.strictEqual((yield* Dispatcher.stats(d)).live, 1)
      yield* TestClock.adjust("1 millis")
      yield* settle
      assert.deepStrictEqual(yield* Dispatcher.children(d), [])
      assert.strictEqual(yield* Dispatcher.call(d, rq("a", "", 3)), "a:3", "the next request spawns anew")
      const stats = yield* Dispatcher.stats(d)
      assert.deepStrictEqual([stats.spawned, stats.successors], [2, 0])
    }).pipe(Effect.scoped))

  it.effect("each child ends exactly idleTimeToLive after its last request, whatever the order they were served in", () =>
    Effect.gen(function*() {
      // a seeded random history of requests and clock steps over 8 keys: after every step, the live
      // children are exactly the keys whose last request was under 100 ms ago
      const d = yield* Dispatcher.make(echoServe({ idleTimeToLive: "100 millis" }))
      let seed = 7
      const random = (n: number) => {
        seed = (seed * 1103515245 + 12345) % 2147483648
        return seed % n
      }
      const keys = ["a", "b", "c", "d", "e", "f", "g", "h"]
      const lastRequest = new Map<string, number>()
      let now = 0
      for (let step = 0; step < 400; step++) {
        if (random(3) === 0) {
          const step = 1 + random(60)
          now += step
          yield* TestClock.adjust(step)
          yield* settle
          for (const [key, at] of lastRequest) if (now - at >= 100) lastRequest.delete(key)
          const live = (yield* Dispatcher.children(d)).map((child) => child.key).sort()
          assert.deepStrictEqual(live, [...lastRequest.keys()].sort(), `at ${now} ms`)
        } else {
          const key = keys[random(keys.length)]!
          assert.strictEqual(yield* Dispatcher.call(d, rq(key, "", step)), `${key}:${step}`)
          lastRequest.set(key, now)
        }
      }
    }).pipe(Effect.scoped))

  it.effect("the race with a new request: a request sent as the idle timer fires is served", () =>
    Effect.gen(function*() {
      const d = yield* Dispatcher.make(echoServe({ idleTimeToLive: "100 millis" }))
      // the sender's timer is registered before the child's idle timer, then after it
      const early = yield* Effect.forkChild(Effect.andThen(Effect.sleep("100 millis"), Dispatcher.call(d, rq("a", "", 1))))
      yield* Dispatcher.call(d, rq("a", "", 0))
      const late = yield* Effect.forkChild(Effect.andThen(Effect.sleep("100 millis"), Dispatcher.call(d, rq("a", "", 2))))
      yield* TestClock.adjust("100 millis")
      assert.strictEqual(yield* Fiber.join(early), "a:1")
      assert.strictEqual(yield* Fiber.join(late), "a:2")
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.strictEqual((yield* Dispatcher.stats(d)).live, 0)
    }).pipe(Effect.scoped))

  it.effect("a request that arrives after serve decided to end is served by a successor", () =>
    Effect.gen(function*() {
      let self: Dispatcher.Dispatcher<Rq, string, string> | undefined
      const raced: Array<Deferred.Deferred<string, string | Dispatcher.DispatchError>> = []
      const d = yield* Dispatcher.make<Rq, string, string>({
        keyOf: (r) => r.group,
        spawn: (child) =>
          Dispatcher.serve(child, (r) => Effect.succeed(`served ${r.n}`), { idleTimeToLive: "50 millis" }).pipe(
            // after the idle end, before the disposal: a request for this key arrives
            Effect.andThen(
              Effect.suspend(() =>
                raced.length === 0 ? Effect.map(Dispatcher.send(self!, rq("a", "", 2)), (a) => raced.push(a)) : Effect.void
              )
            ),
            Effect.orDie
          )
      })
      self = d
      yield* Dispatcher.call(d, rq("a", "", 1))
      yield* TestClock.adjust("50 millis")
      assert.strictEqual(yield* Deferred.await(raced[0]!), "served 2")
      const stats = yield* Dispatcher.stats(d)
      assert.deepStrictEqual([stats.spawned, stats.successors], [2, 1])
    }).pipe(Effect.scoped))

  it.effect("a bad idleTimeToLive dies with InvalidOptions naming it", () =>
    Effect.gen(function*() {
      const t = yield* Dispatcher.testChild<string>("k")
      const exit = yield* Effect.exit(Dispatcher.serve(t.spec, () => Effect.void, { idleTimeToLive: -5 }))
      const defect = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
      assert.instanceOf(defect, Dispatcher.InvalidOptions)
      assert.match((defect as Dispatcher.InvalidOptions).message, /idleTimeToLive.*-5/)
    }))
})

describe("requestTimeout", () => {
  it.effect("a deadline passing in a mailbox answers RequestTimeout at the deadline", () =>
    Effect.gen(function*() {
      const { d, endAll, nextChild } = yield* fakeGroups({ requestTimeout: "1 second" })
      const answer = yield* Dispatcher.send(d, rq("a", "", 1))
      const child = yield* nextChild
      yield* TestClock.adjust("999 millis")
      assert.isFalse(yield* Deferred.isDone(answer))
      yield* TestClock.adjust("1 millis")
      const error = yield* errorOf(answer)
      assert.deepStrictEqual([error._tag, error.key], ["RequestTimeout", "a"])
      // a late reply changes nothing
      const envelope = yield* child.take
      assert.isFalse(yield* envelope.succeed("late"))
      assert.strictEqual((yield* errorOf(answer))._tag, "RequestTimeout")
      assert.strictEqual((yield* Dispatcher.stats(d)).rejected.requestTimeout, 1)
      yield* endAll
    }).pipe(Effect.scoped))

  it.effect("thousands of answered requests between open ones: each open one still times out at its own deadline", () =>
    Effect.gen(function*() {
      // "slow" never answers; "fast" answers at once: its requests leave the deadline queue as it grows
      const d = yield* Dispatcher.make<Rq, string, string>({
        keyOf: (r) => r.group,
        spawn: (child) =>
          Dispatcher.serve(child, (r) => (r.group === "slow" ? Effect.never : Effect.succeed(`fast ${r.n}`)))
      }, { requestTimeout: "1 minute", mailboxCapacity: 8 })
      const fast = (from: number) =>
        Effect.forEach(Array.from({ length: 3000 }, (_, i) => from + i), (n) => Dispatcher.call(d, rq("fast", "", n)), {
          discard: true
        })
      const first = yield* Dispatcher.send(d, rq("slow", "", 1))
      yield* fast(0)
      yield* TestClock.adjust("10 seconds")
      const second = yield* Dispatcher.send(d, rq("slow", "", 2))
      yield* fast(3000)
      yield* TestClock.adjust("49999 millis")
      assert.isFalse(yield* Deferred.isDone(first))
      yield* TestClock.adjust("1 millis")
      assert.strictEqual((yield* errorOf(first))._tag, "RequestTimeout")
      yield* TestClock.adjust("9999 millis")
      assert.isFalse(yield* Deferred.isDone(second))
      yield* TestClock.adjust("1 millis")
      assert.strictEqual((yield* errorOf(second))._tag, "RequestTimeout")
      const stats = yield* Dispatcher.stats(d)
      assert.deepStrictEqual([stats.accepted, stats.rejected.requestTimeout], [6002, 2])
    }).pipe(Effect.scoped))

  it.effect("a deadline passing in a downstream mailbox answers the caller RequestTimeout", () =>
    Effect.gen(function*() {
      const { d, ...inner } = yield* fakeTopics({ root: { requestTimeout: "2 seconds" } })
      const answer = yield* Dispatcher.send(d, rq("g", "t", 1))
      yield* inner.nextChild
      yield* TestClock.adjust("2 seconds")
      const error = yield* errorOf(answer)
      assert.deepStrictEqual([error._tag, error.key], ["RequestTimeout", "g"])
      yield* inner.endAll
    }).pipe(Effect.scoped))

  it.effect("a downstream dispatcher's own requestTimeout answers with its key", () =>
    Effect.gen(function*() {
      const { d, ...inner } = yield* fakeTopics({
        root: { requestTimeout: "5 seconds" },
        inner: { requestTimeout: "1 second" }
      })
      const answer = yield* Dispatcher.send(d, rq("g", "t", 1))
      yield* inner.nextChild
      yield* TestClock.adjust("1 second")
      const error = yield* errorOf(answer)
      assert.deepStrictEqual([error._tag, error.key], ["RequestTimeout", "t"])
      yield* inner.endAll
    }).pipe(Effect.scoped))

  it.effect("a handler still running at the deadline is interrupted; serve skips expired requests", () =>
    Effect.gen(function*() {
      const ran: Array<number> = []
      let interrupted = 0
      const d = yield* Dispatcher.make<Rq, string, string>({
        keyOf: (r) => r.group,
        spawn: (child) =>
          Dispatcher.serve(child, (r) => {
            ran.push(r.n)
            return Effect.sleep("10 seconds").pipe(
              Effect.as(`done ${r.n}`),
              Effect.onInterrupt(() => Effect.sync(() => interrupted++))
            )
          })
      }, { requestTimeout: "1 second" })
      const first = yield* Dispatcher.send(d, rq("a", "", 1))
      const second = yield* Dispatcher.send(d, rq("a", "", 2))
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* errorOf(first))._tag, "RequestTimeout")
      assert.strictEqual((yield* errorOf(second))._tag, "RequestTimeout")
      yield* settle
      assert.strictEqual(interrupted, 1)
      assert.deepStrictEqual(ran, [1], "the expired second request never reached the handler")
      // the child goes on serving
      const third = yield* Dispatcher.send(d, rq("a", "", 3))
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* errorOf(third))._tag, "RequestTimeout")
      assert.deepStrictEqual(ran, [1, 3])
    }).pipe(Effect.scoped))

  it.effect("a call withdrawn while its handler runs interrupts the handler (requests with a deadline)", () =>
    Effect.gen(function*() {
      let interrupted = 0
      const d = yield* Dispatcher.make<Rq, string, string>({
        keyOf: (r) => r.group,
        spawn: (child) =>
          Dispatcher.serve(child, () => Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => interrupted++))))
      }, { requestTimeout: "1 minute" })
      const caller = yield* Effect.forkChild(Dispatcher.call(d, rq("a", "", 1)))
      yield* settle
      yield* Fiber.interrupt(caller)
      yield* settle
      assert.strictEqual(interrupted, 1)
      // the child goes on serving
      const next = yield* Dispatcher.send(d, rq("a", "", 2))
      yield* TestClock.adjust("1 minute")
      assert.strictEqual((yield* errorOf(next))._tag, "RequestTimeout")
      assert.strictEqual(interrupted, 2)
      const stats = yield* Dispatcher.stats(d)
      assert.deepStrictEqual([stats.accepted, stats.withdrawn, stats.rejected.requestTimeout], [2, 1, 1])
    }).pipe(Effect.scoped))

  it.effect("an answer before the deadline stands; the deadline then does nothing", () =>
    Effect.gen(function*() {
      const d = yield* Dispatcher.make(echoServe(), { requestTimeout: "1 second" })
      assert.strictEqual(yield* Dispatcher.call(d, rq("a", "", 1)), "a:1")
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual((yield* Dispatcher.stats(d)).rejected.requestTimeout, 0)
    }).pipe(Effect.scoped))
})

describe("restart", () => {
  /** every child fails at once; `log` gets the (Test)Clock time each one started */
  const failing = (log: Array<number>) =>
    ({
      keyOf: (r: Rq) => r.group,
      spawn: () =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          log.push(now)
          return Effect.fail("boom")
        })
    }) satisfies Dispatcher.Factory<Rq, string, string>

  it.effect("restart pacing: successors of a failing child follow the schedule's delays (default: 10 ms doubling, capped at 1 s)", () =>
    Effect.gen(function*() {
      const starts: Array<number> = []
      const d = yield* Dispatcher.make(failing(starts))
      const answer = yield* Dispatcher.send(d, rq("a", "", 1))
      const expected = [10, 20, 40, 80, 160, 320, 640, 1000, 1000]
      for (const delay of expected) {
        yield* TestClock.adjust(delay - 1)
        const before = starts.length
        yield* settle
        assert.strictEqual(starts.length, before, `no successor before ${delay} ms`)
        yield* TestClock.adjust(1)
        yield* settle
        assert.strictEqual(starts.length, before + 1, `a successor after ${delay} ms`)
      }
      assert.strictEqual(starts.length, 10, "ten children in all")
      // the tenth consecutive failure gives up: ChildFailed with the last cause, key forgotten
      const error = yield* errorOf(answer)
      assert.strictEqual(error._tag, "ChildFailed")
      assert.isTrue(Cause.hasFails((error as Dispatcher.ChildFailed).cause as Cause.Cause<unknown>))
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(starts.length, 10, "no eleventh")
      assert.deepStrictEqual(yield* Dispatcher.children(d), [])
      const stats = yield* Dispatcher.stats(d)
      assert.deepStrictEqual([stats.failures, stats.spawned, stats.rejected.childFailed], [10, 10, 1])
    }).pipe(Effect.scoped))

  it.effect("give-up answers every waiting request ChildFailed and forgets the key", () =>
    Effect.gen(function*() {
      const starts: Array<number> = []
      const d = yield* Dispatcher.make(failing(starts), {
        restart: Schedule.spaced("5 millis").pipe(Schedule.upTo({ times: 2 }))
      })
      const answers = yield* Effect.forEach([1, 2, 3], (n) => Dispatcher.send(d, rq("a", "", n)))
      yield* TestClock.adjust("5 millis")
      yield* TestClock.adjust("5 millis")
      for (const a of answers) assert.strictEqual((yield* errorOf(a))._tag, "ChildFailed")
      assert.strictEqual(starts.length, 3)
      assert.deepStrictEqual(yield* Dispatcher.children(d), [])
      // forgotten: a new request starts over with a fresh schedule
      yield* Dispatcher.send(d, rq("a", "", 4))
      yield* settle
      assert.strictEqual(starts.length, 4)
      yield* TestClock.adjust("10 millis")
    }).pipe(Effect.scoped))

  it.effect("reset after success: a child that answers a request successfully starts the backoff over", () =>
    Effect.gen(function*() {
      let spawns = 0
      const d = yield* Dispatcher.make<Rq, string, string>({
        keyOf: (r) => r.group,
        spawn: (child) =>
          Effect.gen(function*() {
            const n = ++spawns
            if (n === 3) {
              // answers one request, then fails
              const envelope = yield* Queue.take(child.requests)
              yield* envelope.succeed("ok")
            }
            return yield* Effect.fail(`failure ${n}`)
          })
      })
      yield* Effect.forEach([1, 2, 3], (n) => Dispatcher.send(d, rq("a", "", n)))
      yield* settle
      assert.strictEqual(spawns, 1)
      yield* TestClock.adjust("10 millis")
      assert.strictEqual(spawns, 2)
      yield* TestClock.adjust("20 millis")
      assert.strictEqual(spawns, 3, "third child answers once, then fails")
      // reset: the next delay is 10 ms again, not 40
      yield* TestClock.adjust("10 millis")
      assert.strictEqual(spawns, 4)
      yield* TestClock.adjust("1 second")
    }).pipe(Effect.scoped))

  it.effect("only failures are paced: a child that ends cleanly or is interrupted gets its successor at once", () =>
    Effect.gen(function*() {
      const { d, endAll, nextChild } = yield* fakeGroups()
      yield* Effect.forEach([1, 2, 3], (n) => Dispatcher.send(d, rq("a", "", n)))
      const c1 = yield* nextChild
      yield* c1.end()
      const c2 = yield* nextChild
      yield* c2.end(Exit.interrupt())
      const c3 = yield* nextChild
      assert.strictEqual((yield* c3.take).request.n, 1)
      assert.strictEqual((yield* Dispatcher.stats(d)).failures, 0)
      yield* endAll
    }).pipe(Effect.scoped))

  it.effect("a child that fails holding a request it took answers it ChildFailed", () =>
    Effect.gen(function*() {
      const { d, endAll, nextChild } = yield* fakeGroups()
      const answer = yield* Dispatcher.send(d, rq("a", "", 1))
      const child = yield* nextChild
      yield* child.take
      yield* child.end(Exit.fail("crashed"))
      const error = yield* errorOf(answer)
      assert.strictEqual(error._tag, "ChildFailed")
      assert.deepStrictEqual(Cause.squash((error as Dispatcher.ChildFailed).cause as Cause.Cause<unknown>), "crashed")
      yield* endAll
    }).pipe(Effect.scoped))
})

describe("maxChildren", () => {
  it.effect("LRU passivation order: the least recently used idle child makes room", () =>
    Effect.gen(function*() {
      const finalized: Array<string> = []
      const d = yield* Dispatcher.make<Rq, string, string>({
        keyOf: (r) => r.group,
        spawn: (child) =>
          Effect.addFinalizer(() => Effect.sync(() => finalized.push(child.key))).pipe(
            Effect.andThen(Dispatcher.serve(child, (r) => Effect.succeed(`${child.key}:${r.n}`)))
          )
      }, { maxChildren: 3 })
      for (const key of ["a", "b", "c"]) yield* Dispatcher.call(d, rq(key, "", 1))
      yield* Dispatcher.call(d, rq("a", "", 2)) // a is now the most recently used
      yield* Dispatcher.call(d, rq("d", "", 1)) // passivates b
      yield* settle
      assert.deepStrictEqual(finalized, ["b"])
      yield* Dispatcher.call(d, rq("e", "", 1)) // passivates c
      yield* settle
      assert.deepStrictEqual(finalized, ["b", "c"])
      assert.sameMembers((yield* Dispatcher.children(d)).map((c) => c.key), ["a", "d", "e"])
      // a passivated key comes back as a new child
      assert.strictEqual(yield* Dispatcher.call(d, rq("b", "", 9)), "b:9")
      yield* settle
      assert.deepStrictEqual(finalized, ["b", "c", "a"])
    }).pipe(Effect.scoped))

  it.effect("with no idle child the new key's request fails TooManyRequests", () =>
    Effect.gen(function*() {
      const { d, endAll, nextChild } = yield* fakeGroups({ maxChildren: 2 })
      yield* Dispatcher.send(d, rq("a", "", 1))
      yield* Dispatcher.send(d, rq("b", "", 1))
      yield* nextChild
      yield* nextChild
      const error = yield* Effect.flip(Dispatcher.send(d, rq("c", "", 1)))
      assert.instanceOf(error, Dispatcher.TooManyRequests)
      assert.deepStrictEqual([error.key, (error as Dispatcher.TooManyRequests).capacity], ["c", 2])
      assert.strictEqual((yield* Dispatcher.stats(d)).live, 2)
      yield* endAll
    }).pipe(Effect.scoped))

  it.effect("a new key's child starts once the child passivated for it has ended: the cap holds at every moment", () =>
    Effect.gen(function*() {
      const { d, endAll, nextChild, unclaimed } = yield* fakeGroups({ maxChildren: 1 })
      const a1 = yield* Dispatcher.send(d, rq("a", "", 1))
      const a = yield* nextChild
      yield* a.takeAndAnswer("a1")
      assert.strictEqual(yield* Deferred.await(a1), "a1")
      const b1 = yield* Dispatcher.send(d, rq("b", "", 1)) // passivates a: its mailbox ends, it finishes what it holds
      yield* settle
      assert.strictEqual((yield* Effect.exit(a.take))._tag, "Failure", "a's mailbox has ended")
      // a still lives (this fake child ends only when told): b waits for its place
      assert.strictEqual(yield* unclaimed, 0)
      assert.deepStrictEqual((yield* Dispatcher.children(d)).map((c) => c.key), ["a"])
      assert.strictEqual((yield* Dispatcher.stats(d)).live, 1)
      // every place is taken by a key with work: a request for a (still ending) is refused
      const refused = yield* Effect.flip(Dispatcher.send(d, rq("a", "", 2)))
      assert.strictEqual(refused._tag, "TooManyRequests")
      yield* a.end()
      const b = yield* nextChild
      assert.strictEqual(b.key, "b")
      yield* b.takeAndAnswer("b1")
      assert.strictEqual(yield* Deferred.await(b1), "b1")
      const a3 = yield* Dispatcher.send(d, rq("a", "", 3)) // b is idle now: passivated to make room for a
      yield* b.end()
      const aAgain = yield* nextChild
      assert.strictEqual(aAgain.key, "a")
      assert.deepStrictEqual(yield* aAgain.takeAndAnswer("a3"), rq("a", "", 3))
      assert.strictEqual(yield* Deferred.await(a3), "a3")
      yield* endAll
    }).pipe(Effect.scoped))

  it.effect("live children never exceed the cap, even while passivated ones take their time to stop", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      let live = 0
      let peak = 0
      const d = yield* Dispatcher.make<Rq, string, string>({
        keyOf: (r) => r.group,
        spawn: (child) =>
          Effect.acquireRelease(
            Effect.sync(() => {
              live++
              peak = Math.max(peak, live)
            }),
            // a passivated child takes its time to stop
            () => Effect.andThen(Deferred.await(gate), Effect.sync(() => live--))
          ).pipe(Effect.andThen(Dispatcher.serve(child, (r) => Effect.succeed(`${r.n}`))))
      }, { maxChildren: 4 })
      // twenty new keys in one synchronous burst
      const calls: Array<Fiber.Fiber<Exit.Exit<string, unknown>>> = []
      for (let i = 0; i < 20; i++) calls.push(yield* Effect.forkChild(Effect.exit(Dispatcher.call(d, rq(`k${i}`, "", i)))))
      yield* settle
      // four serve; four are stopping, and the four keys passivated for wait for their places
      assert.strictEqual(peak, 4)
      assert.strictEqual((yield* Dispatcher.stats(d)).live, 4)
      yield* Deferred.succeed(gate, undefined)
      const exits = yield* Effect.forEach(calls, Fiber.join)
      assert.strictEqual(peak, 4)
      // the rest found every place taken by a key with work: refused, not queued
      const refused = exits.filter((e) => e._tag === "Failure").length
      assert.strictEqual(refused, 12)
      assert.strictEqual(exits.length - refused, 8)
    }).pipe(Effect.scoped))
})

describe("overflow: { wait }", () => {
  it.effect("overflow wait succeeds when room frees, in the order the senders came", () =>
    Effect.gen(function*() {
      const { d, endAll, nextChild } = yield* fakeGroups({ mailboxCapacity: 1, overflow: { wait: "1 second" } })
      yield* Dispatcher.send(d, rq("a", "", 1))
      const child = yield* nextChild
      const w2 = yield* Effect.forkChild(Dispatcher.send(d, rq("a", "", 2)))
      const w3 = yield* Effect.forkChild(Dispatcher.send(d, rq("a", "", 3)))
      yield* settle
      assert.isFalse(isDone(w2))
      assert.strictEqual((yield* child.take).request.n, 1)
      yield* Fiber.join(w2)
      assert.isFalse(isDone(w3))
      assert.strictEqual((yield* child.take).request.n, 2)
      yield* Fiber.join(w3)
      assert.strictEqual((yield* child.take).request.n, 3)
      assert.strictEqual((yield* Dispatcher.stats(d)).accepted, 3)
      yield* endAll
    }).pipe(Effect.scoped))

  it.effect("overflow wait times out with TooManyRequests", () =>
    Effect.gen(function*() {
      const { d, endAll, nextChild } = yield* fakeGroups({ mailboxCapacity: 1, overflow: { wait: "500 millis" } })
      yield* Dispatcher.send(d, rq("a", "", 1))
      yield* nextChild
      const waiting = yield* Effect.forkChild(Effect.flip(Dispatcher.send(d, rq("a", "", 2))))
      yield* TestClock.adjust("499 millis")
      assert.isFalse(isDone(waiting))
      yield* TestClock.adjust("1 millis")
      const error = yield* Fiber.join(waiting)
      assert.deepStrictEqual([error._tag, error.key], ["TooManyRequests", "a"])
      assert.deepStrictEqual(yield* Dispatcher.children(d), [{ key: "a", mailboxSize: 1, incarnation: 1 }])
      yield* endAll
    }).pipe(Effect.scoped))

  it.effect("waiting senders get Unavailable when the dispatcher stops", () =>
    Effect.gen(function*() {
      const { d, endAll, nextChild } = yield* fakeGroups({ mailboxCapacity: 1, overflow: { wait: "1 hour" } })
      yield* Dispatcher.send(d, rq("a", "", 1))
      yield* nextChild
      const waiting = yield* Effect.forkChild(Effect.flip(Dispatcher.send(d, rq("a", "", 2))))
      yield* settle
      const stopping = yield* Effect.forkChild(Dispatcher.shutdown(d))
      const error = yield* Fiber.join(waiting)
      assert.strictEqual(error._tag, "Unavailable")
      yield* endAll
      yield* Fiber.join(stopping)
    }).pipe(Effect.scoped))

  it.effect("a downstream dispatcher waits for room per key without holding up other keys", () =>
    Effect.gen(function*() {
      const { d, ...inner } = yield* fakeTopics({ inner: { mailboxCapacity: 1, overflow: { wait: "1 second" } } })
      yield* Dispatcher.send(d, rq("g", "t1", 1))
      const t1 = yield* inner.nextChild
      const blocked = yield* Dispatcher.send(d, rq("g", "t1", 2))
      const other = yield* Dispatcher.send(d, rq("g", "t2", 3))
      const t2 = yield* inner.nextChild
      yield* t2.takeAndAnswer("t2 served")
      assert.strictEqual(yield* Deferred.await(other), "t2 served")
      assert.isFalse(yield* Deferred.isDone(blocked))
      yield* t1.takeAndAnswer("first")
      assert.strictEqual((yield* t1.take).request.n, 2)
      yield* TestClock.adjust("2 seconds")
      yield* inner.endAll
    }).pipe(Effect.scoped))
})
