/**
 * `Options.fence`: asked with a request's key just before a child is handed
 * the request. A `Sharded` runner fences the keys of a shard whose lease may
 * have lapsed, so that a child frozen with requests in its mailbox (SIGSTOP,
 * a long pause) takes none of them once it resumes; in-process, any cheap
 * predicate of the key.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import { Dispatcher } from "../src/index.js"
import { errorOf, type Rq, rq, settle } from "./support/harness.js"

describe("fence", () => {
  it.effect("requests waiting in a child's mailbox are answered Unavailable once their key is fenced; none is handled", () =>
    Effect.gen(function*() {
      const fenced = new Set<string>()
      const gate = yield* Deferred.make<void>()
      const handled: Array<number> = []
      const d = yield* Dispatcher.make<Rq, number>({
        keyOf: (r) => r.group,
        spawn: (child) =>
          Dispatcher.serve(child, (r) => Effect.as(r.n === 1 ? Deferred.await(gate) : Effect.void, r.n).pipe(
            Effect.tap(() => Effect.sync(() => handled.push(r.n)))
          ))
      }, { fence: (key) => !fenced.has(key) })
      const running = yield* Dispatcher.send(d, rq("a", "", 1))
      const waiting = yield* Effect.forEach([2, 3], (n) => Dispatcher.send(d, rq("a", "", n)))
      yield* settle
      // fenced while its child runs the first: the one running is not interrupted (the fence is asked
      // before a request is handed over); those waiting are never handed over
      fenced.add("a")
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Deferred.await(running), 1)
      for (const answer of waiting) {
        const error = yield* errorOf(answer)
        assert.deepStrictEqual([error._tag, error.key], ["Unavailable", "a"])
      }
      assert.deepStrictEqual(handled, [1])
      // other keys are served; and "a" again once the fence lifts
      assert.strictEqual(yield* Dispatcher.call(d, rq("b", "", 4)), 4)
      fenced.delete("a")
      assert.strictEqual(yield* Dispatcher.call(d, rq("a", "", 5)), 5)
      assert.deepStrictEqual(handled, [1, 4, 5])
      assert.strictEqual((yield* Dispatcher.stats(d)).rejected.unavailable, 2)
    }).pipe(Effect.scoped))

  it.effect("a request for an idle child is answered Unavailable at once, its handler never called", () =>
    Effect.gen(function*() {
      let open = true
      let calls = 0
      const d = yield* Dispatcher.make<string, string>({
        keyOf: (s) => s,
        spawn: (child) => Dispatcher.serve(child, (s) => (calls++, Effect.succeed(s)))
      }, { fence: () => open })
      assert.strictEqual(yield* Dispatcher.call(d, "a"), "a")
      open = false
      const error = yield* Effect.flip(Dispatcher.call(d, "a"))
      assert.deepStrictEqual([error._tag, error.key], ["Unavailable", "a"])
      assert.strictEqual(calls, 1)
    }).pipe(Effect.scoped))

  it.effect("levels below inherit it: a fenced group's topics are handed nothing; other groups are served", () =>
    Effect.gen(function*() {
      const fenced = new Set<string>()
      const handled: Array<string> = []
      const topics: Dispatcher.Factory<Rq, string> = {
        keyOf: (r) => r.topic,
        spawn: (child) =>
          Dispatcher.serve(child, (r) => Effect.sync(() => (handled.push(`${r.group}/${r.topic}`), r.topic)))
      }
      const d = yield* Dispatcher.make<Rq, string>({
        keyOf: (r) => r.group,
        spawn: (child) => Dispatcher.runChild(child, topics, { name: "topics" })
      }, { name: "groups", fence: (group) => !fenced.has(group) })
      assert.strictEqual(yield* Dispatcher.call(d, rq("g1", "t1")), "t1")
      assert.strictEqual(yield* Dispatcher.call(d, rq("g2", "t1")), "t1")
      fenced.add("g1")
      const error = yield* Effect.flip(Dispatcher.call(d, rq("g1", "t2")))
      assert.deepStrictEqual([error._tag, error.key], ["Unavailable", "g1"])
      assert.strictEqual(yield* Dispatcher.call(d, rq("g2", "t2")), "t2")
      assert.deepStrictEqual(handled, ["g1/t1", "g2/t1", "g2/t2"])
    }).pipe(Effect.scoped))
})
