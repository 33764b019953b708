/**
 * `Effect.forEach` with `concurrency` over calls: every item runs once. Effect
 * 4.1's concurrent forEach can run an item twice (and skip one) when a worker
 * completes another worker synchronously; a `call` completes no caller but
 * its own inside its call, so its workers never finish inside one another.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
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
})
