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
})
