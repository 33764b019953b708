/**
 * The scenarios of Kafka-Pixy's dispatcher test suite, rewritten for this API.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Scope } from "effect"
import { Dispatcher } from "../src/index.js"
import { errorOf, fakeFactory, fakeGroups, isDone, rq, type Rq, settle } from "./support/harness.js"

describe("Kafka-Pixy dispatcher scenarios", () => {
  it.effect("children on demand: two groups spawn two children, each reading its requests in order", () =>
    Effect.gen(function*() {
      const { d, endAll, nextChild, unclaimed } = yield* fakeGroups()
      yield* Dispatcher.send(d, rq("g1", "t1"))
      yield* Dispatcher.send(d, rq("g2", "t2"))
      yield* Dispatcher.send(d, rq("g2", "t3"))
      yield* Dispatcher.send(d, rq("g1", "t4"))
      const g1 = yield* nextChild
      const g2 = yield* nextChild
      yield* settle
      assert.strictEqual(yield* unclaimed, 0)
      assert.deepStrictEqual([g1.key, g2.key], ["g1", "g2"])
      assert.deepStrictEqual([(yield* g1.take).request.topic, (yield* g1.take).request.topic], ["t1", "t4"])
      assert.deepStrictEqual([(yield* g2.take).request.topic, (yield* g2.take).request.topic], ["t2", "t3"])
      assert.strictEqual((yield* Dispatcher.stats(d)).spawned, 2)
      yield* endAll
    }).pipe(Effect.scoped))

  it.effect("successor: a child that takes two of three requests and ends is succeeded by one that takes the third", () =>
    Effect.gen(function*() {
      const { d, endAll, nextChild } = yield* fakeGroups()
      const answers = yield* Effect.forEach([1, 2, 3], (n) => Dispatcher.send(d, rq("g1", "t", n)))
      const first = yield* nextChild
      assert.deepStrictEqual(yield* first.takeAndAnswer("a"), rq("g1", "t", 1))
      yield* first.takeAndAnswer("b")
      yield* first.end()
      const second = yield* nextChild
      assert.strictEqual(second.key, "g1")
      assert.deepStrictEqual([yield* Deferred.await(answers[0]!), yield* Deferred.await(answers[1]!)], ["a", "b"])
      assert.deepStrictEqual((yield* second.take).request, rq("g1", "t", 3))
      assert.deepStrictEqual(yield* Dispatcher.children(d), [{ key: "g1", mailboxSize: 0, incarnation: 2 }])
      const stats = yield* Dispatcher.stats(d)
      assert.strictEqual(stats.spawned, 2)
      assert.strictEqual(stats.successors, 1)
      yield* endAll
    }).pipe(Effect.scoped))

  it.effect("forgotten after an empty exit: the next request for the key spawns a new child", () =>
    Effect.gen(function*() {
      const { d, endAll, nextChild } = yield* fakeGroups()
      const a1 = yield* Dispatcher.send(d, rq("g1", "t", 1))
      const first = yield* nextChild
      yield* first.takeAndAnswer("one")
      yield* first.end()
      yield* Deferred.await(first.finalized)
      yield* settle
      assert.deepStrictEqual(yield* Dispatcher.children(d), [])
      assert.strictEqual(yield* Deferred.await(a1), "one")
      const a2 = yield* Dispatcher.send(d, rq("g1", "t", 2))
      const second = yield* nextChild
      assert.notStrictEqual(second, first)
      assert.deepStrictEqual(yield* second.takeAndAnswer("two"), rq("g1", "t", 2))
      assert.strictEqual(yield* Deferred.await(a2), "two")
      assert.deepStrictEqual(yield* Dispatcher.children(d), [{ key: "g1", mailboxSize: 0, incarnation: 1 }])
      yield* endAll
    }).pipe(Effect.scoped))

  it.effect("overflow: the (N+1)th request fails TooManyRequests at once, the N are untouched, g2 still served", () =>
    Effect.gen(function*() {
      const N = 5
      const { d, endAll, nextChild } = yield* fakeGroups({ mailboxCapacity: N })
      const waiting = yield* Effect.forEach(Array.from({ length: N }, (_, i) => i), (n) => Dispatcher.send(d, rq("g1", "t", n)))
      const g1 = yield* nextChild
      const refused = yield* Effect.flip(Dispatcher.send(d, rq("g1", "t", N)))
      assert.strictEqual(refused._tag, "TooManyRequests")
      assert.deepStrictEqual([refused.key, (refused as Dispatcher.TooManyRequests).capacity], ["g1", N])
      for (const deferred of waiting) assert.isFalse(yield* Deferred.isDone(deferred))
      const g2answer = yield* Dispatcher.send(d, rq("g2", "t", 0))
      const g2 = yield* nextChild
      assert.strictEqual(g2.key, "g2")
      assert.deepStrictEqual(yield* g2.takeAndAnswer("served"), rq("g2", "t", 0))
      assert.strictEqual(yield* Deferred.await(g2answer), "served")
      // g1's mailbox still holds the N, in order
      for (let n = 0; n < N; n++) assert.strictEqual((yield* g1.take).request.n, n)
      yield* endAll
    }).pipe(Effect.scoped))

  it.effect("stop with leftovers: stop waits for both children, then answers g1's untaken request Unavailable", () =>
    Effect.gen(function*() {
      const { d, nextChild } = yield* fakeGroups()
      const g1a = yield* Dispatcher.send(d, rq("g1", "t", 1))
      const g1b = yield* Dispatcher.send(d, rq("g1", "t", 2))
      const g2a = yield* Dispatcher.send(d, rq("g2", "t", 1))
      const g1 = yield* nextChild
      const g2 = yield* nextChild
      const g1taken = yield* g1.take
      const g2taken = yield* g2.take
      const stopping = yield* Effect.forkChild(Dispatcher.shutdown(d))
      yield* settle
      assert.isFalse(isDone(stopping))
      yield* g1taken.succeed("g1 served")
      yield* g1.end()
      yield* settle
      assert.isFalse(isDone(stopping), "stop must wait for g2")
      yield* g2taken.succeed("g2 served")
      yield* g2.end()
      yield* Fiber.join(stopping)
      assert.strictEqual((yield* errorOf(g1b))._tag, "Unavailable")
      assert.strictEqual(yield* Deferred.await(g1a), "g1 served")
      assert.strictEqual(yield* Deferred.await(g2a), "g2 served")
      assert.strictEqual((yield* Dispatcher.stats(d)).rejected.unavailable, 1)
    }).pipe(Effect.scoped))

  it.effect("stop of a hierarchy: neither level stops while a topic child lives; leftovers Unavailable; leaves first", () =>
    Effect.gen(function*() {
      const { factory: topics, nextChild } = yield* fakeFactory((r: Rq) => r.topic)
      const order: Array<string> = []
      const groups: Dispatcher.Factory<Rq, string, string> = {
        keyOf: (r) => r.group,
        spawn: (child) =>
          Dispatcher.runChild(child, topics, { name: "topics" }).pipe(
            Effect.ensuring(Effect.sync(() => order.push(`downstream ${child.key} stopped`)))
          )
      }
      const d = yield* Dispatcher.make(groups, { name: "groups" })
      const topicsOf = ["t1", "t2", "t1", "t1", "t2", "t1", "t2"]
      const answers = yield* Effect.forEach(topicsOf, (t, n) => Dispatcher.send(d, rq("g1", t, n)))
      const t1 = yield* nextChild
      const t2 = yield* nextChild
      assert.deepStrictEqual([t1.key, t2.key], ["t1", "t2"])
      const taken1 = [yield* t1.take, yield* t1.take]
      const taken2 = [yield* t2.take, yield* t2.take]
      assert.deepStrictEqual(taken1.map((e) => e.request.n), [0, 2])
      assert.deepStrictEqual(taken2.map((e) => e.request.n), [1, 4])
      const stopping = yield* Effect.forkChild(
        Dispatcher.shutdown(d).pipe(Effect.ensuring(Effect.sync(() => order.push("root stopped"))))
      )
      yield* settle
      assert.isFalse(isDone(stopping))
      for (const e of taken1) yield* e.succeed(`t1 #${e.request.n}`)
      yield* t1.end()
      yield* settle
      assert.isFalse(isDone(stopping), "a topic child still lives")
      for (const e of taken2) yield* e.succeed(`t2 #${e.request.n}`)
      yield* t2.end()
      yield* Fiber.join(stopping)
      for (const n of [3, 5, 6]) assert.strictEqual((yield* errorOf(answers[n]!))._tag, "Unavailable")
      for (const n of [0, 1, 2, 4]) assert.match(yield* Deferred.await(answers[n]!), /^t[12] #\d$/)
      assert.deepStrictEqual(order, ["downstream g1 stopped", "root stopped"])
    }).pipe(Effect.scoped))

  it.effect("stops with its last child: a downstream dispatcher ends only when its last child has ended", () =>
    Effect.gen(function*() {
      const { factory: topics, nextChild } = yield* fakeFactory((r: Rq) => r.topic)
      const downstreamEnded = yield* Deferred.make<void>()
      const groups: Dispatcher.Factory<Rq, string, string> = {
        keyOf: (r) => r.group,
        spawn: (child) =>
          Dispatcher.runChild(child, topics).pipe(Effect.ensuring(Deferred.succeed(downstreamEnded, undefined)))
      }
      const d = yield* Dispatcher.make(groups)
      yield* Dispatcher.send(d, rq("g1", "t1", 1))
      yield* Dispatcher.send(d, rq("g1", "t2", 2))
      const t1 = yield* nextChild
      const t2 = yield* nextChild
      yield* t1.takeAndAnswer("one")
      yield* t1.end()
      yield* settle
      assert.isFalse(yield* Deferred.isDone(downstreamEnded), "t2 still lives")
      yield* t2.end() // without taking its request: a successor is spawned
      const t2b = yield* nextChild
      assert.strictEqual(t2b.key, "t2")
      yield* settle
      assert.isFalse(yield* Deferred.isDone(downstreamEnded), "the successor lives")
      yield* t2b.takeAndAnswer("two")
      yield* t2b.end()
      yield* Deferred.await(downstreamEnded)
      yield* settle
      assert.deepStrictEqual(yield* Dispatcher.children(d), [])
    }).pipe(Effect.scoped))

  it.effect("finalizer: the root's enclosing finalizer runs once both children ended and the root stopped", () =>
    Effect.gen(function*() {
      const ran: Array<string> = []
      const { factory, nextChild } = yield* fakeFactory((r: Rq) => r.group)
      const scope = yield* Scope.make()
      yield* Scope.addFinalizer(scope, Effect.sync(() => ran.push("enclosing finalizer")))
      const d = yield* Dispatcher.make(factory).pipe(Scope.provide(scope))
      yield* Dispatcher.send(d, rq("g1", "t"))
      yield* Dispatcher.send(d, rq("g2", "t"))
      const g1 = yield* nextChild
      const g2 = yield* nextChild
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* settle
      assert.deepStrictEqual(ran, [])
      yield* g1.takeAndAnswer("one")
      yield* g1.end()
      yield* settle
      assert.deepStrictEqual(ran, [], "g2 still lives")
      yield* g2.takeAndAnswer("two")
      yield* g2.end()
      yield* Fiber.join(closing)
      assert.deepStrictEqual(ran, ["enclosing finalizer"])
      assert.isTrue(yield* Deferred.isDone(g1.finalized))
      assert.isTrue(yield* Deferred.isDone(g2.finalized))
    }))
})
