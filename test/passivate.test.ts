/**
 * `Dispatcher.passivate`: end one key's child the way `maxChildren` makes
 * room. The sharded runners use it when their runner no longer holds a key's
 * shard; in-process it ends a key that leaves (a tenant offboarded).
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { Dispatcher } from "../src/index.js"
import { errorOf, fakeGroups, isDone, rq, type Rq, settle } from "./support/harness.js"

/** `serve` children that log their start and end, and answer when `gate` opens. */
const loggedServe = (log: Array<string>, gate: Deferred.Deferred<void>): Dispatcher.Factory<Rq, string> => ({
  keyOf: (r) => r.group,
  spawn: (child) => {
    log.push(`start ${child.key}`)
    return Effect.addFinalizer(() => Effect.sync(() => log.push(`end ${child.key}`))).pipe(
      Effect.andThen(Dispatcher.serve(child, (r) => Effect.as(Deferred.await(gate), `${r.group}:${r.n}`)))
    )
  }
})

describe("passivate", () => {
  it.effect("an idle child ends, its key is forgotten, and the next request spawns anew", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const gate = yield* Deferred.make<void>()
      yield* Deferred.succeed(gate, undefined)
      const d = yield* Dispatcher.make(loggedServe(log, gate))
      assert.strictEqual(yield* Dispatcher.call(d, rq("a", "", 1)), "a:1")
      yield* Dispatcher.passivate(d, "a")
      assert.deepStrictEqual(log, ["start a", "end a"], "returns once the child has ended")
      assert.deepStrictEqual(yield* Dispatcher.children(d), [])
      assert.strictEqual(yield* Dispatcher.call(d, rq("a", "", 2)), "a:2")
      const stats = yield* Dispatcher.stats(d)
      assert.deepStrictEqual([stats.spawned, stats.successors, stats.live], [2, 0, 1])
    }).pipe(Effect.scoped))

  it.effect("a child with requests waiting drains them before it ends; a request sent meanwhile gets a successor after it", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const gate = yield* Deferred.make<void>()
      const d = yield* Dispatcher.make(loggedServe(log, gate))
      const waiting = yield* Effect.forEach([1, 2, 3], (n) => Dispatcher.send(d, rq("a", "", n)))
      yield* settle
      const passivated = yield* Effect.forkChild(Dispatcher.passivate(d, "a"))
      yield* settle
      assert.isFalse(isDone(passivated), "waits for the child's end")
      const later = yield* Dispatcher.send(d, rq("a", "", 4))
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(passivated)
      assert.deepStrictEqual(yield* Effect.forEach(waiting, Deferred.await), ["a:1", "a:2", "a:3"])
      assert.strictEqual(yield* Deferred.await(later), "a:4")
      assert.deepStrictEqual(log, ["start a", "end a", "start a"], "the successor starts once the old child has ended")
    }).pipe(Effect.scoped))

  it.effect("a child that ends without draining its mailbox: what it left is answered Unavailable", () =>
    Effect.gen(function*() {
      const { d, nextChild } = yield* fakeGroups()
      const first = yield* Dispatcher.send(d, rq("a", "", 1))
      const child = yield* nextChild
      const second = yield* Dispatcher.send(d, rq("a", "", 2))
      yield* child.takeAndAnswer("a:1")
      const passivated = yield* Effect.forkChild(Dispatcher.passivate(d, "a"))
      yield* settle
      yield* child.end()
      yield* Fiber.join(passivated)
      assert.strictEqual(yield* Deferred.await(first), "a:1")
      assert.strictEqual((yield* errorOf(second))._tag, "Unavailable")
      assert.deepStrictEqual(yield* Dispatcher.children(d), [])
    }).pipe(Effect.scoped))

  it.effect("a key waiting out a restart delay: what waits is answered Unavailable and no successor starts", () =>
    Effect.gen(function*() {
      let spawns = 0
      const d = yield* Dispatcher.make<Rq, string>({
        keyOf: (r) => r.group,
        // a typed failure: retried after the delay (a defect at the start would not be)
        spawn: () => Effect.sync(() => spawns++).pipe(Effect.andThen(Effect.fail("boom")))
      }, { restart: Schedule.spaced("1 second") })
      const waiting = yield* Dispatcher.send(d, rq("a", "", 1))
      yield* settle
      assert.strictEqual(spawns, 1)
      yield* Dispatcher.passivate(d, "a")
      assert.strictEqual((yield* errorOf(waiting))._tag, "Unavailable")
      yield* TestClock.adjust("5 seconds")
      yield* settle
      assert.strictEqual(spawns, 1, "the cancelled successor never started")
      assert.deepStrictEqual(yield* Dispatcher.children(d), [])
      assert.strictEqual((yield* Dispatcher.stats(d)).live, 0)
    }).pipe(Effect.scoped))

  it.effect("from inside the key's own child it does not wait for itself", () =>
    Effect.gen(function*() {
      let self: Dispatcher.Dispatcher<Rq, string> | undefined
      const d = yield* Dispatcher.make<Rq, string>({
        keyOf: (r) => r.group,
        spawn: (child) =>
          Dispatcher.serve(child, (r) => Effect.as(Dispatcher.passivate(self!, child.key), `${r.group}:${r.n}`))
      })
      self = d
      assert.strictEqual(yield* Dispatcher.call(d, rq("a", "", 1)), "a:1")
      yield* settle
      assert.deepStrictEqual(yield* Dispatcher.children(d), [], "it ended once its request was answered")
    }).pipe(Effect.scoped))

  it.effect("a key with no child, a stopped dispatcher, a handle with no passivate: nothing to do", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const d = yield* Dispatcher.make(loggedServe([], gate))
      yield* Dispatcher.passivate(d, "nobody")
      yield* Dispatcher.shutdown(d)
      yield* Dispatcher.passivate(d, "a")
      const other = Dispatcher.fromImplementation<string, string>({
        name: "other",
        send: () => Effect.die("unused"),
        call: () => Effect.die("unused"),
        shutdown: Effect.void,
        awaitStop: Effect.void,
        stats: Effect.die("unused"),
        children: Effect.succeed([]),
        tree: Effect.die("unused")
      })
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(Dispatcher.passivate(other, "a"))))
      yield* d.pipe(Dispatcher.passivate("a"))
    }).pipe(Effect.scoped))
})
