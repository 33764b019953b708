/**
 * DESIGN.md "Behaviour": one test (or a few) per numbered behaviour, named after it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Context, Deferred, Effect, Exit, Fiber, Layer, Queue, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { Dispatcher } from "../src/index.js"
import { errorOf, fakeFactory, fakeGroups, fakeTopics, isDone, rq, type Rq, settle } from "./support/harness.js"
import { captureLogs } from "./support/logs.js"

const echo = (name = "echo"): Dispatcher.Factory<Rq, string, string> => ({
  keyOf: (r) => r.group,
  spawn: (child) => Dispatcher.serve(child, (r, key) => Effect.succeed(`${name}:${key}:${r.topic}:${r.n}`))
})

describe("1. Children on demand", () => {
  it.effect("the first request for a key spawns its child; later ones reach the same child in order", () =>
    Effect.gen(function*() {
      const { d, endAll, nextChild } = yield* fakeGroups()
      yield* Dispatcher.send(d, rq("a", "x", 1))
      const a = yield* nextChild
      yield* Dispatcher.send(d, rq("a", "x", 2))
      yield* Dispatcher.send(d, rq("a", "x", 3))
      yield* settle
      assert.deepStrictEqual(yield* Dispatcher.children(d), [{ key: "a", mailboxSize: 3, incarnation: 1 }])
      assert.deepStrictEqual([(yield* a.take).request.n, (yield* a.take).request.n, (yield* a.take).request.n], [1, 2, 3])
      assert.strictEqual((yield* Dispatcher.stats(d)).spawned, 1)
      yield* endAll
    }).pipe(Effect.scoped))
})

describe("2. Overflow is shed, not queued", () => {
  it.effect("a full mailbox refuses the next request at once; waiting ones and other keys are untouched", () =>
    Effect.gen(function*() {
      const { d, endAll, nextChild } = yield* fakeGroups({ mailboxCapacity: 2 })
      const held = [yield* Dispatcher.send(d, rq("a", "", 1)), yield* Dispatcher.send(d, rq("a", "", 2))]
      const a = yield* nextChild
      const refused = yield* Effect.flip(Dispatcher.send(d, rq("a", "", 3)))
      assert.instanceOf(refused, Dispatcher.TooManyRequests)
      assert.deepStrictEqual({ key: refused.key, capacity: (refused as Dispatcher.TooManyRequests).capacity }, {
        key: "a",
        capacity: 2
      })
      assert.deepStrictEqual(yield* Dispatcher.children(d), [{ key: "a", mailboxSize: 2, incarnation: 1 }])
      for (const h of held) assert.isFalse(yield* Deferred.isDone(h))
      yield* Dispatcher.send(d, rq("b", "", 1))
      assert.strictEqual((yield* nextChild).key, "b")
      assert.strictEqual((yield* a.take).request.n, 1)
      // room again: accepted
      yield* Dispatcher.send(d, rq("a", "", 4))
      const stats = yield* Dispatcher.stats(d)
      assert.deepStrictEqual([stats.accepted, stats.rejected.tooManyRequests], [4, 1])
      yield* endAll
    }).pipe(Effect.scoped))
})

describe("2. Overflow: capacity counts the mailbox, not the request in the handler", () => {
  it.effect("mailboxCapacity 8 accepts 9 for a key whose handler holds one (capacity + 1), and refuses the 10th", () =>
    Effect.gen(function*() {
      const holding = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      const d = yield* Dispatcher.make<number, number>({
        keyOf: () => "k",
        spawn: (child) =>
          Dispatcher.serve(child, (n: number) =>
            Deferred.succeed(holding, undefined).pipe(Effect.andThen(Deferred.await(gate)), Effect.as(n)))
      }, { mailboxCapacity: 8 })
      // the handler takes the first request out of the mailbox and holds it
      const accepted = [yield* Dispatcher.send(d, 1)]
      yield* Deferred.await(holding)
      for (let n = 2; n <= 9; n++) accepted.push(yield* Dispatcher.send(d, n))
      assert.deepStrictEqual(yield* Dispatcher.children(d), [{ key: "k", mailboxSize: 8, incarnation: 1 }])
      const refused = yield* Effect.flip(Dispatcher.send(d, 10))
      assert.instanceOf(refused, Dispatcher.TooManyRequests)
      assert.strictEqual((refused as Dispatcher.TooManyRequests).capacity, 8)
      yield* Deferred.succeed(gate, undefined)
      assert.deepStrictEqual(yield* Effect.forEach(accepted, Deferred.await), [1, 2, 3, 4, 5, 6, 7, 8, 9])
      const stats = yield* Dispatcher.stats(d)
      assert.deepStrictEqual([stats.accepted, stats.rejected.tooManyRequests], [9, 1])
    }).pipe(Effect.scoped))
})

describe("3. Successor on exit", () => {
  it.effect("a child that ends with requests waiting is succeeded on the same mailbox; an empty exit forgets the key", () =>
    Effect.gen(function*() {
      const { d, endAll, nextChild } = yield* fakeGroups()
      const answers = yield* Effect.forEach([1, 2], (n) => Dispatcher.send(d, rq("a", "", n)))
      const first = yield* nextChild
      yield* first.end()
      const second = yield* nextChild
      assert.strictEqual(second.spec.requests, first.spec.requests, "the same mailbox")
      yield* second.takeAndAnswer("1")
      yield* second.takeAndAnswer("2")
      assert.deepStrictEqual([yield* Deferred.await(answers[0]!), yield* Deferred.await(answers[1]!)], ["1", "2"])
      yield* second.end()
      yield* settle
      assert.deepStrictEqual(yield* Dispatcher.children(d), [])
      yield* endAll
    }).pipe(Effect.scoped))

  it.effect("a request that arrives as the child ends is served by a successor (nothing interleaves check and change)", () =>
    Effect.gen(function*() {
      const spawned: Array<number> = []
      let self: Dispatcher.Dispatcher<Rq, string, string> | undefined
      const late: Array<Deferred.Deferred<string, string | Dispatcher.DispatchError>> = []
      const factory: Dispatcher.Factory<Rq, string, string> = {
        keyOf: (r) => r.group,
        spawn: (child) =>
          Effect.gen(function*() {
            spawned.push(spawned.length + 1)
            const envelope = yield* Queue.take(child.requests)
            yield* envelope.succeed(`served ${envelope.request.n}`)
            if (envelope.request.n === 1) {
              // the last thing this child does: a new request for its own key races its end
              late.push(yield* Dispatcher.send(self!, rq("a", "", 2)))
            }
          })
      }
      const d = yield* Dispatcher.make(factory)
      self = d
      assert.strictEqual(yield* Dispatcher.call(d, rq("a", "", 1)), "served 1")
      yield* settle
      assert.strictEqual(yield* Deferred.await(late[0]!), "served 2")
      assert.deepStrictEqual(spawned, [1, 2])
      const stats = yield* Dispatcher.stats(d)
      assert.deepStrictEqual([stats.spawned, stats.successors, stats.live], [2, 1, 0])
    }).pipe(Effect.scoped))
})

describe("3. Successor on exit: nothing interleaves with a placement", () => {
  it.effect("a child passivated to make room, whose end answers a caller who sends for the same new key, leaves one child for it", () =>
    Effect.gen(function*() {
      const leaf: Dispatcher.Factory<Rq, string, string> = {
        keyOf: (r) => r.topic,
        spawn: (child) =>
          child.key === "fail" ? Effect.fail("boom") : Dispatcher.serve(child, (r) => Effect.succeed(r.topic))
      }
      const d = yield* Dispatcher.make<Rq, string, string>({
        keyOf: (r) => r.group,
        spawn: (child) => Dispatcher.runChild(child, leaf, { restart: Schedule.spaced("1 second") })
      }, { maxChildren: 1 })
      // caller 1: a call that waits on A's failing topic, then a send for B as soon as it is answered
      const caller1 = yield* Effect.forkChild(
        Effect.exit(Dispatcher.call(d, rq("A", "fail"))).pipe(Effect.andThen(Dispatcher.send(d, rq("B", "x", 1))))
      )
      yield* settle
      // caller 2: B is new, A is passivated to make room; A's stop answers caller 1, who sends for B
      const b2 = yield* Dispatcher.send(d, rq("B", "x", 2))
      const b1 = yield* Fiber.join(caller1)
      yield* TestClock.adjust("2 seconds")
      assert.deepStrictEqual([yield* Deferred.await(b1), yield* Deferred.await(b2)], ["x", "x"])
      assert.deepStrictEqual((yield* Dispatcher.children(d)).map((c) => c.key), ["B"])
      assert.strictEqual((yield* Dispatcher.stats(d)).live, 1)
      yield* Dispatcher.shutdown(d)
    }).pipe(Effect.scoped))
})

describe("4. Hierarchy", () => {
  it.effect("a dispatcher under a dispatcher under a dispatcher routes by each level's key", () =>
    Effect.gen(function*() {
      interface Path {
        readonly a: string
        readonly b: string
        readonly c: string
      }
      const leaf: Dispatcher.Factory<Path, string> = {
        keyOf: (p) => p.c,
        spawn: (child) => Dispatcher.serve(child, (p, key) => Effect.succeed(`${p.a}/${p.b}/${key}`))
      }
      const middle: Dispatcher.Factory<Path, string> = {
        keyOf: (p) => p.b,
        spawn: (child) => Dispatcher.runChild(child, leaf, { name: "c" })
      }
      const top: Dispatcher.Factory<Path, string> = {
        keyOf: (p) => p.a,
        spawn: (child) => Dispatcher.runChild(child, middle, { name: "b" })
      }
      const d = yield* Dispatcher.make(top, { name: "a" })
      const paths = ["x/y/z", "x/y/w", "x/v/z", "u/y/z"].map((s) => {
        const [a, b, c] = s.split("/") as [string, string, string]
        return { a, b, c }
      })
      const answers = yield* Effect.forEach(paths, (p) => Dispatcher.call(d, p), { concurrency: "unbounded" })
      assert.deepStrictEqual(answers, ["x/y/z", "x/y/w", "x/v/z", "u/y/z"])
    }).pipe(Effect.scoped))

  it.effect("a downstream dispatcher ends when its parent ends its mailbox", () =>
    Effect.gen(function*() {
      const ended = yield* Deferred.make<void>()
      const inner = yield* fakeFactory((r: Rq) => r.topic)
      const d = yield* Dispatcher.make<Rq, string, string>({
        keyOf: (r) => r.group,
        spawn: (child) => Dispatcher.runChild(child, inner.factory).pipe(Effect.ensuring(Deferred.succeed(ended, undefined)))
      })
      const answer = yield* Dispatcher.send(d, rq("g", "t"))
      const t = yield* inner.nextChild
      yield* t.takeAndAnswer("ok")
      const stopping = yield* Effect.forkChild(Dispatcher.shutdown(d))
      yield* settle
      assert.isFalse(yield* Deferred.isDone(ended), "waits for its child")
      yield* t.end()
      yield* Fiber.join(stopping)
      assert.isTrue(yield* Deferred.isDone(ended))
      assert.strictEqual(yield* Deferred.await(answer), "ok")
    }).pipe(Effect.scoped))
})

describe("5. Stop", () => {
  it.effect("stopping ends every mailbox (children drain), waits for them, answers leftovers, refuses new requests", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const d = yield* Dispatcher.make<Rq, string, string>({
        keyOf: (r) => r.group,
        spawn: (child) =>
          Dispatcher.serve(child, (r) => Effect.as(Deferred.await(gate), `drained ${r.n}`))
      })
      const answers = yield* Effect.forEach([1, 2, 3], (n) => Dispatcher.send(d, rq("a", "", n)))
      const stopping = yield* Effect.forkChild(Dispatcher.shutdown(d))
      yield* settle
      assert.isFalse(isDone(stopping))
      const refused = yield* Effect.flip(Dispatcher.send(d, rq("a", "", 4)))
      assert.strictEqual(refused._tag, "Unavailable")
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(stopping)
      // the child drained what was in its mailbox
      for (const [i, a] of answers.entries()) assert.strictEqual(yield* Deferred.await(a), `drained ${i + 1}`)
      const stats = yield* Dispatcher.stats(d)
      assert.deepStrictEqual([stats.live, stats.rejected.unavailable], [0, 1])
    }).pipe(Effect.scoped))

  it.effect("serve with onStop 'interrupt': a handler still waiting is interrupted and answered Unavailable", () =>
    Effect.gen(function*() {
      const d = yield* Dispatcher.make<Rq, string, string>({
        keyOf: (r) => r.group,
        spawn: (child) => Dispatcher.serve(child, () => Effect.never, { onStop: "interrupt" })
      })
      const poll = yield* Dispatcher.send(d, rq("a", "", 1))
      const queued = yield* Dispatcher.send(d, rq("a", "", 2))
      yield* settle
      // no deadline and a handler that never ends: with "drain" this stop would wait forever
      yield* Dispatcher.shutdown(d)
      assert.deepStrictEqual([(yield* errorOf(poll))._tag, (yield* errorOf(queued))._tag], ["Unavailable", "Unavailable"])
    }).pipe(Effect.scoped))

  it.effect("send after stop fails Unavailable with the key", () =>
    Effect.gen(function*() {
      const d = yield* Dispatcher.make(echo())
      yield* Dispatcher.shutdown(d)
      const error = yield* Effect.flip(Dispatcher.call(d, rq("late", "", 1)))
      assert.instanceOf(error, Dispatcher.Unavailable)
      assert.strictEqual(error.key, "late")
    }).pipe(Effect.scoped))

  it.effect("shutdown twice: idempotent, and awaitStop returns once stopped", () =>
    Effect.gen(function*() {
      const d = yield* Dispatcher.make(echo())
      yield* Dispatcher.call(d, rq("a", "", 1))
      yield* Dispatcher.shutdown(d)
      yield* Dispatcher.shutdown(d)
      yield* Dispatcher.awaitStop(d)
      assert.strictEqual((yield* Dispatcher.stats(d)).live, 0)
    }).pipe(Effect.scoped))

  it.effect("in a hierarchy the stop goes level by level, leaves first", () =>
    Effect.gen(function*() {
      const order: Array<string> = []
      const leaf: Dispatcher.Factory<Rq, string> = {
        keyOf: (r) => r.topic,
        spawn: (child) =>
          Dispatcher.serve(child, (r) => Effect.succeed(r.topic)).pipe(
            Effect.ensuring(Effect.sync(() => order.push(`leaf ${child.key}`)))
          )
      }
      const d = yield* Dispatcher.make<Rq, string>({
        keyOf: (r) => r.group,
        spawn: (child) =>
          Dispatcher.runChild(child, leaf).pipe(Effect.ensuring(Effect.sync(() => order.push(`middle ${child.key}`))))
      })
      yield* Dispatcher.call(d, rq("g", "t1"))
      yield* Dispatcher.call(d, rq("g", "t2"))
      yield* Dispatcher.shutdown(d).pipe(Effect.ensuring(Effect.sync(() => order.push("root"))))
      assert.deepStrictEqual(order.slice(-1), ["root"])
      assert.deepStrictEqual(order.indexOf("middle g"), 2)
      assert.sameMembers(order.slice(0, 2), ["leaf t1", "leaf t2"])
    }).pipe(Effect.scoped))
})

describe("6. Nothing lost", () => {
  it.effect("every accepted request is answered exactly once, including by children that fail and stop", () =>
    Effect.gen(function*() {
      let answeredTwice = 0
      const d = yield* Dispatcher.make<Rq, string, string>({
        keyOf: (r) => r.group,
        spawn: (child) =>
          Effect.gen(function*() {
            for (;;) {
              const envelope = yield* Queue.take(child.requests)
              const n = envelope.request.n
              if (n % 7 === 0) return // ends, taking the request with it
              if (n % 11 === 0) return yield* Effect.fail("boom")
              if (n % 13 === 0) return yield* Effect.die("defect")
              yield* envelope.succeed(`ok ${n}`)
              if (yield* envelope.succeed("again")) answeredTwice++
            }
          })
      }, { mailboxCapacity: 8 })
      const accepted: Array<Deferred.Deferred<string, string | Dispatcher.DispatchError>> = []
      let refused = 0
      for (let n = 1; n <= 300; n++) {
        const r = yield* Effect.exit(Dispatcher.send(d, rq(`k${n % 5}`, "", n)))
        if (Exit.isSuccess(r)) accepted.push(r.value)
        else refused++
        if (n % 20 === 0) yield* TestClock.adjust("1 second")
      }
      yield* TestClock.adjust("10 seconds")
      yield* Dispatcher.shutdown(d)
      const outcomes = yield* Effect.forEach(accepted, (a) => Effect.exit(Deferred.await(a)))
      assert.strictEqual(outcomes.length + refused, 300)
      assert.strictEqual(answeredTwice, 0)
      const stats = yield* Dispatcher.stats(d)
      assert.strictEqual(stats.accepted, accepted.length)
      assert.isTrue(outcomes.every((o) => o._tag === "Success" || o._tag === "Failure"))
    }).pipe(Effect.scoped))
})

describe("6. Nothing lost: withdrawn calls", () => {
  it.effect("an interrupted call withdraws its request: a child that has not taken it skips it", () =>
    Effect.gen(function*() {
      const handled: Array<string> = []
      const gate = yield* Deferred.make<void>()
      const d = yield* Dispatcher.make<string, void>({
        keyOf: () => "k",
        spawn: (child) =>
          Dispatcher.serve(child, (request) => Effect.andThen(Deferred.await(gate), Effect.sync(() => handled.push(request))))
      })
      const first = yield* Effect.forkChild(Dispatcher.call(d, "first"))
      const second = yield* Effect.forkChild(Dispatcher.call(d, "second"))
      yield* settle
      yield* Fiber.interrupt(second)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(first)
      yield* settle
      assert.deepStrictEqual(handled, ["first"])
    }).pipe(Effect.scoped))
})

describe("7. Finalizers", () => {
  it.effect("a child's finalizers run when it ends, before its disposal is handled (before the successor starts)", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      let incarnation = 0
      const d = yield* Dispatcher.make<Rq, string>({
        keyOf: (r) => r.group,
        spawn: (child) =>
          Effect.gen(function*() {
            const me = ++incarnation
            events.push(`start ${me}`)
            yield* Effect.addFinalizer(() => Effect.sync(() => events.push(`finalize ${me}`)))
            const envelope = yield* Queue.take(child.requests)
            yield* envelope.succeed(`by ${me}`)
          })
      })
      const answers = yield* Effect.forEach([1, 2], (n) => Dispatcher.send(d, rq("a", "", n)))
      assert.deepStrictEqual(
        [yield* Deferred.await(answers[0]!), yield* Deferred.await(answers[1]!)],
        ["by 1", "by 2"]
      )
      yield* settle
      assert.deepStrictEqual(events, ["start 1", "finalize 1", "start 2", "finalize 2"])
    }).pipe(Effect.scoped))
})

describe("8. Failing children", () => {
  it.effect("a failing or dying child is logged with its Cause and succeeded; siblings and parent carry on", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const { d, endAll, nextChild } = yield* fakeGroups({ name: "groups" })
      yield* Dispatcher.send(d, rq("a", "", 1))
      yield* Dispatcher.send(d, rq("a", "", 2))
      const sibling = yield* Dispatcher.send(d, rq("b", "", 1))
      const a = yield* nextChild
      const b = yield* nextChild
      yield* a.end(Exit.fail("boom"))
      yield* TestClock.adjust("10 millis")
      const a2 = yield* nextChild
      assert.strictEqual(a2.key, "a")
      // it takes the first request, then dies holding it: that one is answered ChildFailed
      assert.strictEqual((yield* a2.take).request.n, 1)
      yield* a2.end(Exit.die(new Error("kaput")))
      yield* TestClock.adjust("20 millis")
      const a3 = yield* nextChild
      assert.strictEqual((yield* a3.take).request.n, 2)
      yield* b.takeAndAnswer("fine")
      assert.strictEqual(yield* Deferred.await(sibling), "fine")
      const warnings = logs.entries.filter((e) => e.level === "Warn")
      assert.strictEqual(warnings.length, 2)
      assert.isTrue(Cause.hasFails(warnings[0]!.cause))
      assert.isTrue(Cause.hasDies(warnings[1]!.cause))
      assert.deepStrictEqual(warnings[0]!.annotations, { dispatcher: "groups", key: "a", incarnation: 1 })
      const stats = yield* Dispatcher.stats(d)
      assert.deepStrictEqual([stats.failures, stats.successors, stats.live], [2, 2, 2])
      yield* endAll
    }).pipe(Effect.scoped, Effect.provide(logs.layer))
  })
})

describe("9. Bad input", () => {
  const noop: Dispatcher.Factory<string> = { keyOf: (s) => s, spawn: () => Effect.void }

  it.effect("bad options fail InvalidOptions at make, layer and runChild, naming the option and value", () =>
    Effect.gen(function*() {
      const e1 = yield* Effect.flip(Dispatcher.make(noop, { mailboxCapacity: 0 }))
      assert.strictEqual(e1._tag, "InvalidOptions")
      assert.match(e1.message, /mailboxCapacity.*got 0/)
      class Tag extends Context.Service<Tag, Dispatcher.Dispatcher<string>>()("test/Tag") {}
      const e2 = yield* Effect.flip(Layer.build(Dispatcher.layer(Tag, noop, { requestTimeout: "soon" as never })))
      assert.match(e2.message, /requestTimeout.*"soon"/)
      const t = yield* Dispatcher.testChild<string>("k")
      const e3 = yield* Effect.flip(Dispatcher.runChild(t.spec, noop, { maxChildren: 1.5 }))
      assert.match(e3.message, /maxChildren.*1\.5/)
    }).pipe(Effect.scoped))

  it.effect("testChild with a bad capacity dies with InvalidOptions", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Dispatcher.testChild("k", 0))
      assert.isTrue(Exit.isFailure(exit) && Cause.hasDies(exit.cause))
      const defect = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
      assert.instanceOf(defect, Dispatcher.InvalidOptions)
    }))

  it.effect("a keyOf that throws fails that one send with a defect; the dispatcher goes on", () =>
    Effect.gen(function*() {
      const d = yield* Dispatcher.make<Rq, string, string>({
        keyOf: (r) => {
          if (r.group === "") throw new Error("no group")
          return r.group
        },
        spawn: echo().spawn
      })
      const exit = yield* Effect.exit(Dispatcher.send(d, rq("", "", 1)))
      assert.isTrue(Exit.isFailure(exit) && Cause.hasDies(exit.cause))
      assert.strictEqual(yield* Dispatcher.call(d, rq("a", "t", 2)), "echo:a:t:2")
    }).pipe(Effect.scoped))

  it.effect("in a downstream dispatcher a throwing keyOf answers that request with the defect", () =>
    Effect.gen(function*() {
      const d = yield* Dispatcher.make<Rq, string, string>({
        keyOf: (r) => r.group,
        spawn: (child) =>
          Dispatcher.runChild(child, {
            keyOf: (r: Rq) => {
              if (r.topic === "bad") throw new Error("bad topic")
              return r.topic
            },
            spawn: (c) => Dispatcher.serve(c, (r: Rq) => Effect.succeed(r.topic))
          })
      })
      const bad = yield* Effect.exit(Dispatcher.call(d, rq("g", "bad")))
      assert.isTrue(Exit.isFailure(bad) && Cause.hasDies(bad.cause))
      assert.strictEqual(yield* Dispatcher.call(d, rq("g", "good")), "good")
    }).pipe(Effect.scoped))

  it.effect("a spawn that throws while building its effect is handled like a child that died: at its start, so not restarted", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      let calls = 0
      const d = yield* Dispatcher.make<Rq, string, string>({
        keyOf: (r) => r.group,
        spawn: (child) => {
          if (++calls === 1) throw new Error("cannot build")
          return echo().spawn(child)
        }
      })
      // it would die the same way again: the waiting request is answered at once, without a restart
      const error = yield* Effect.flip(Dispatcher.call(d, rq("a", "t", 1)))
      assert.instanceOf(error, Dispatcher.ChildFailed)
      assert.match(error.message, /the child serving "a" failed: Error: cannot build/)
      assert.deepStrictEqual(logs.entries.filter((e) => e.level === "Warn").map((e) => [e.message].flat()[0]), [
        "child died before it took a request; not restarted (it would die the same way)"
      ])
      // the key was forgotten: the next request spawns anew
      assert.strictEqual(yield* Dispatcher.call(d, rq("a", "t", 2)), "echo:a:t:2")
      const stats = yield* Dispatcher.stats(d)
      assert.deepStrictEqual([stats.failures, stats.successors, stats.spawned, stats.rejected.childFailed], [1, 0, 2, 1])
    }).pipe(Effect.scoped, Effect.provide(logs.layer))
  })
})

describe("10. Downstream answers", () => {
  it.effect("a downstream mailbox that is full answers the original caller TooManyRequests with its key and capacity", () =>
    Effect.gen(function*() {
      const { d, ...inner } = yield* fakeTopics({ root: { mailboxCapacity: 10 }, inner: { mailboxCapacity: 2 } })
      const answers = yield* Effect.forEach([1, 2, 3], (n) => Dispatcher.send(d, rq("g", "t", n)))
      yield* settle
      const error = yield* errorOf(answers[2]!)
      assert.instanceOf(error, Dispatcher.TooManyRequests)
      assert.deepStrictEqual({ key: error.key, capacity: (error as Dispatcher.TooManyRequests).capacity }, {
        key: "t",
        capacity: 2
      })
      yield* inner.endAll
    }).pipe(Effect.scoped))

  it.effect("serve interrupted while a handler runs answers that request Unavailable", () =>
    Effect.gen(function*() {
      const t = yield* Dispatcher.testChild<string, string>("k")
      const started = yield* Deferred.make<void>()
      const fiber = yield* Effect.forkChild(
        Dispatcher.serve(t.spec, () => Effect.andThen(Deferred.succeed(started, undefined), Effect.never))
      )
      const answer = yield* t.offer("slow")
      const second = yield* t.offer("next")
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      const e1 = yield* errorOf(answer)
      const e2 = yield* errorOf(second)
      assert.deepStrictEqual([e1._tag, e1.key, e2._tag], ["Unavailable", "k", "Unavailable"])
    }))
})

describe("extras from the Go suite", () => {
  it.effect("the Layer with a user's Context.Service tag", () =>
    Effect.gen(function*() {
      class Echo extends Context.Service<Echo, Dispatcher.Dispatcher<Rq, string, string>>()("test/Echo") {}
      const answer = yield* Effect.flatMap(Effect.service(Echo), (d) => Dispatcher.call(d, rq("a", "b", 1))).pipe(
        Effect.provide(Dispatcher.layer(Echo, echo("layer")))
      )
      assert.strictEqual(answer, "layer:a:b:1")
    }))

  it.effect("a child's own finalizer runs once when it ends", () =>
    Effect.gen(function*() {
      let finalized = 0
      const d = yield* Dispatcher.make<Rq, string>({
        keyOf: (r) => r.group,
        spawn: (child) =>
          Effect.addFinalizer(() => Effect.sync(() => finalized++)).pipe(
            Effect.andThen(Dispatcher.serve(child, (r) => Effect.succeed(r.topic), { idleTimeToLive: "1 second" }))
          )
      })
      assert.strictEqual(yield* Dispatcher.call(d, rq("a", "x")), "x")
      assert.strictEqual(finalized, 0)
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.strictEqual(finalized, 1)
      yield* Dispatcher.shutdown(d)
      assert.strictEqual(finalized, 1)
    }).pipe(Effect.scoped))

  it.effect("serve answers each request with its handler's exit, failures included, in order", () =>
    Effect.gen(function*() {
      const t = yield* Dispatcher.testChild<number, number, string>("k")
      const seen: Array<number> = []
      yield* Effect.forkChild(
        Dispatcher.serve(t.spec, (n) => {
          seen.push(n)
          return n < 0 ? Effect.fail(`negative ${n}`) : Effect.succeed(n * 2)
        })
      )
      const answers = yield* Effect.forEach([1, -2, 3], t.offer)
      const exits = yield* Effect.forEach(answers, (a) => Effect.exit(Deferred.await(a)))
      assert.deepStrictEqual(exits.map(String), [Exit.succeed(2), Exit.fail("negative -2"), Exit.succeed(6)].map(String))
      assert.deepStrictEqual(seen, [1, -2, 3])
    }))

  it.effect("testChild: offers are refused when full, and Unavailable once ended", () =>
    Effect.gen(function*() {
      const t = yield* Dispatcher.testChild<string>("k", 1)
      yield* t.offer("a")
      const full = yield* Effect.flip(t.offer("b"))
      assert.deepStrictEqual([full._tag, full.key], ["TooManyRequests", "k"])
      yield* t.end
      const ended = yield* Effect.flip(t.offer("c"))
      assert.strictEqual(ended._tag, "Unavailable")
      const taken = yield* Queue.take(t.spec.requests)
      assert.strictEqual(taken.request, "a")
      assert.strictEqual(taken.key, "k")
    }))
})
