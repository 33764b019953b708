/**
 * Bugs the model-based histories found, each kept as a minimal example once
 * fixed. A bug found and not fixed yet goes in `known-bugs.test.ts`, skipped
 * unless KNOWN_BUGS=1, with its exclusion from the histories (see README.md).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
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
})
