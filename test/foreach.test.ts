/**
 * `Effect.forEach` with `concurrency` over calls: every item runs once. Effect
 * 4.1's concurrent forEach can run an item twice (and return more results than
 * items) when a worker completes another worker synchronously (README, "Errors
 * and bad input"); a `call` completes no caller but its own inside its call, so
 * its workers never finish inside one another. A stop does answer every waiting
 * caller at once: from a worker, it must come after a yield.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import { Dispatcher } from "effect-dispatcher"

describe("Effect.forEach over calls", () => {
  it.effect("every request of a concurrent forEach is sent once and answered once", () =>
    Effect.gen(function*() {
      const handled = new Map<number, number>()
      const d = yield* Dispatcher.make<number, number>({
        keyOf: (n) => `k${n % 3}`,
        spawn: (child) =>
          Dispatcher.serve(child, (n) =>
            Effect.sync(() => {
              handled.set(n, (handled.get(n) ?? 0) + 1)
              return n
            }).pipe(n % 2 === 0 ? (e) => e : Effect.delay(0), Effect.tap(() => (n % 5 === 0 ? Effect.yieldNow : Effect.void))))
      }, { mailboxCapacity: 1024 })
      for (const concurrency of [2, 3, 8]) {
        handled.clear()
        const requests = Array.from({ length: 200 }, (_, i) => i)
        const answers = yield* Effect.forEach(requests, (n) => Dispatcher.call(d, n), { concurrency })
        assert.deepStrictEqual(answers, requests)
        assert.deepStrictEqual([...handled.values()].filter((times) => times !== 1), [])
        assert.strictEqual(handled.size, 200)
      }
    }).pipe(Effect.scoped))

  it.effect("a worker that yields before it stops the dispatcher: every item runs once, the callers are answered Unavailable", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const d = yield* Dispatcher.make({
        keyOf: (n: number) => `k${n}`,
        spawn: (child) => Dispatcher.serve(child, (n: number) => Effect.as(Deferred.await(gate), n), { onStop: "interrupt" })
      })
      const runs: Array<number> = []
      const answers = yield* Effect.forEach([0, 1, 2, 3, 4, 5], (i) => {
        runs.push(i)
        if (i === 0) return Effect.as(Effect.yieldNow, "0")
        if (i === 2) return Effect.as(Effect.andThen(Effect.yieldNow, Dispatcher.shutdown(d)), "stopped")
        return Dispatcher.call(d, i).pipe(
          Effect.map(String),
          Effect.catchTag("Unavailable", () => Effect.succeed(`${i} unavailable`))
        )
      }, { concurrency: 2 })
      assert.deepStrictEqual(runs, [0, 1, 2, 3, 4, 5])
      assert.deepStrictEqual(answers, ["0", "1 unavailable", "stopped", "3 unavailable", "4 unavailable", "5 unavailable"])
    }).pipe(Effect.scoped))
})
