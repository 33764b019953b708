/**
 * A handle carries its own implementation: every function of the module asks
 * it, so a handle of another back-end (a test double here, `Sharded` in a
 * cluster) is used exactly like the in-process one.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Layer } from "effect"
import { Dispatcher } from "../src/index.js"

const stats: Dispatcher.Stats = {
  live: 0,
  spawned: 0,
  successors: 0,
  failures: 0,
  accepted: 0,
  withdrawn: 0,
  rejected: { tooManyRequests: 0, unavailable: 0, requestTimeout: 0, childFailed: 0 }
}

class Upper extends Context.Service<Upper, Dispatcher.Dispatcher<string, string>>()("test/Upper") {}

describe("a handle carries its own implementation", () => {
  it.effect("send, call, stats, children, tree, shutdown and awaitStop ask a handle made with fromImplementation", () =>
    Effect.gen(function*() {
      const asked: Array<string> = []
      const upper = Dispatcher.fromImplementation<string, string>({
        name: "upper",
        send: (request) =>
          Effect.gen(function*() {
            asked.push(`send ${request}`)
            const answer = yield* Deferred.make<string, Dispatcher.DispatchError>()
            yield* Deferred.succeed(answer, request.toUpperCase())
            return answer
          }),
        call: (request) => Effect.sync(() => (asked.push(`call ${request}`), request.toUpperCase())),
        shutdown: Effect.sync(() => void asked.push("shutdown")),
        awaitStop: Effect.sync(() => void asked.push("awaitStop")),
        stats: Effect.succeed({ ...stats, accepted: 2 }),
        children: Effect.succeed([{ key: "a", mailboxSize: 0, incarnation: 1 }]),
        tree: Effect.succeed({ name: "upper", path: "upper", stats, children: [] })
      })
      // the same program runs against it through a service tag, as it would against Dispatcher.layer
      const program = Effect.gen(function*() {
        const d = yield* Upper
        return [
          yield* Dispatcher.call(d, "a"),
          yield* Deferred.await(yield* Dispatcher.send(d, "b")),
          yield* d.pipe(Dispatcher.call("c"))
        ]
      })
      assert.deepStrictEqual(yield* program.pipe(Effect.provide(Layer.succeed(Upper, upper))), ["A", "B", "C"])
      assert.strictEqual((yield* Dispatcher.stats(upper)).accepted, 2)
      assert.deepStrictEqual((yield* Dispatcher.children(upper)).map((c) => c.key), ["a"])
      assert.strictEqual((yield* Dispatcher.tree(upper)).name, "upper")
      yield* Dispatcher.shutdown(upper)
      yield* Dispatcher.awaitStop(upper)
      assert.deepStrictEqual(asked, ["call a", "send b", "call c", "shutdown", "awaitStop"])
      assert.strictEqual(String(upper), "Dispatcher(upper)")
    }))

  it.effect("something that is not a handle dies with a TypeError naming what it got, from every function", () =>
    Effect.gen(function*() {
      const bad = { not: "a dispatcher" } as unknown as Dispatcher.Dispatcher<string, string>
      for (
        const effect of [
          Dispatcher.call(bad, "x"),
          Dispatcher.send(bad, "x"),
          Dispatcher.stats(bad),
          Dispatcher.children(bad),
          Dispatcher.tree(bad),
          Dispatcher.shutdown(bad),
          Dispatcher.awaitStop(bad)
        ] as ReadonlyArray<Effect.Effect<unknown, unknown>>
      ) {
        const exit = yield* Effect.exit(effect)
        assert.isTrue(Exit.hasDies(exit))
        assert.match(String(Exit.findDefect(exit)), /TypeError: expected a Dispatcher .* got \[object Object\]/)
      }
    }))
})
