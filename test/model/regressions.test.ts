/**
 * Bugs the model-based histories found, each kept as a minimal example once
 * fixed. A bug found and not fixed yet goes in `known-bugs.test.ts`, skipped
 * unless KNOWN_BUGS=1, with its exclusion from the histories (see README.md).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope } from "effect"
import { TestClock } from "effect/testing"
import { Dispatcher } from "effect-dispatcher"

const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

describe("found by the model-based histories", () => {
  // DESIGN "restart": "its successor is spawned after the schedule's next delay". Found as: poisonSpawn(a)
  // during a's restart delay poisoned the successor after the next one (factory.spawn ran when the successor
  // was scheduled). Fixed in bb30912.
  it.effect("a failed child's successor is spawned once its restart delay has passed; a stop meanwhile cancels it", () =>
    Effect.gen(function*() {
      let calls = 0
      const d = yield* Dispatcher.make<string, string, string>({
        keyOf: (s) => s,
        spawn: () => {
          calls++
          return Effect.fail("boom")
        }
      })
      yield* Dispatcher.send(d, "a")
      yield* settle
      assert.strictEqual(calls, 1, "the first child failed at once; its successor waits 10 ms before it is spawned")
      yield* Dispatcher.shutdown(d)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(calls, 1, "a successor cancelled by the stop was never spawned")
    }).pipe(Effect.scoped))

  // DESIGN 7: the root's enclosing finalizers run "after all its children have ended and the leftovers were
  // answered". Found as: a call's caller resumed only after them, because the hook serve adds to the request's
  // Deferred (to interrupt its handler) ran first and the whole end of the stop ran inside it. Fixed by having
  // the hook interrupt the handler on the next tick.
  it.effect("a caller resumes with its answer before the root's enclosing finalizers run", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const scope = yield* Scope.make()
      yield* Scope.addFinalizer(scope, Effect.sync(() => events.push("enclosing finalizer")))
      const d = yield* Dispatcher.make<string, string>({
        keyOf: (s) => s,
        spawn: (child) => Dispatcher.serve(child, () => Effect.as(Effect.sleep(40), "ok"))
      }, { requestTimeout: 40 }).pipe(Scope.provide(scope))
      const caller = yield* Effect.forkChild(
        Dispatcher.call(d, "a").pipe(Effect.exit, Effect.tap((exit) => Effect.sync(() => events.push(`caller: ${exit._tag}`))))
      )
      yield* settle
      // the stop waits for the serve child, whose handler runs until the request's deadline
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* settle
      yield* TestClock.adjust(40)
      yield* Fiber.join(closing)
      yield* Fiber.join(caller)
      assert.deepStrictEqual(events, ["caller: Failure", "enclosing finalizer"])
    }))
})
