/**
 * Stopping never hangs: `shutdown` from inside a child however it is wrapped,
 * `shutdownTimeout` at every level of a tree, and a crash loop that yields.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Schedule, Scope } from "effect"
import { TestClock } from "effect/testing"
import { Dispatcher } from "../src/index.js"
import { isDone, rq, type Rq, settle } from "./support/harness.js"
import { captureLogs, quiet } from "./support/logs.js"

type Wrap = (effect: Effect.Effect<void>) => Effect.Effect<void>

const wrappings: ReadonlyArray<readonly [string, Wrap]> = [
  ["plain", (e) => e],
  ["in Effect.scoped", (e) => Effect.scoped(Effect.andThen(Effect.addFinalizer(() => Effect.void), e))],
  [
    "in nested scopes",
    (e) => Effect.scoped(Effect.scoped(Effect.andThen(Effect.addFinalizer(() => Effect.void), e)))
  ],
  ["in a forked fiber that the handler joins", (e) => Effect.flatMap(Effect.forkChild(e), Fiber.join)],
  ["in a detached fiber that the handler joins", (e) => Effect.flatMap(Effect.forkDetach(e), Fiber.join)]
]

describe("shutdown called from inside a child begins the stop and returns at once", () => {
  for (const [name, wrap] of wrappings) {
    it.effect(`from a handler, ${name}: no deadlock; the stop completes once that child has ended`, () =>
      Effect.gen(function*() {
        const self = yield* Deferred.make<Dispatcher.Dispatcher<string, string>>()
        const d = yield* Dispatcher.make<string, string>({
          keyOf: (s) => s,
          spawn: (child) =>
            Dispatcher.serve(child, (s) =>
              s === "stop"
                ? Effect.flatMap(Deferred.await(self), (d) => Effect.as(wrap(Dispatcher.shutdown(d)), "stopping"))
                : Effect.succeed(s))
        })
        yield* Deferred.succeed(self, d)
        const other = yield* Dispatcher.send(d, "other")
        assert.strictEqual(yield* Dispatcher.call(d, "stop"), "stopping")
        yield* Dispatcher.awaitStop(d)
        assert.strictEqual(yield* Deferred.await(other), "other")
        assert.strictEqual((yield* Effect.flip(Dispatcher.send(d, "late")))._tag, "Unavailable")
      }).pipe(Effect.scoped))
  }

  it.effect("from a child two levels down (a downstream dispatcher's child) in Effect.scoped: no deadlock", () =>
    Effect.gen(function*() {
      const self = yield* Deferred.make<Dispatcher.Dispatcher<Rq, string>>()
      const d = yield* Dispatcher.make<Rq, string>({
        keyOf: (r) => r.group,
        spawn: (child) =>
          Dispatcher.runChild(child, {
            keyOf: (r: Rq) => r.topic,
            spawn: (leaf) =>
              Dispatcher.serve(leaf, (r: Rq) =>
                r.n === 0
                  ? Effect.flatMap(Deferred.await(self), (d) => Effect.as(Effect.scoped(Dispatcher.shutdown(d)), "stopping"))
                  : Effect.succeed(`${r.group}/${r.topic}`))
          })
      })
      yield* Deferred.succeed(self, d)
      assert.strictEqual(yield* Dispatcher.call(d, rq("g", "t", 1)), "g/t")
      assert.strictEqual(yield* Dispatcher.call(d, rq("g", "t", 0)), "stopping")
      yield* Dispatcher.awaitStop(d)
      assert.strictEqual((yield* Dispatcher.stats(d)).live, 0)
    }).pipe(Effect.scoped))

  it.effect("a handler that closes the Scope the dispatcher was made in: the stop begins, nothing deadlocks", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const closed = yield* Deferred.make<void>()
      const d = yield* Dispatcher.make<string, string>({
        keyOf: (s) => s,
        spawn: (child) =>
          Dispatcher.serve(child, (s) =>
            s === "close" ? Effect.as(Scope.close(scope, Exit.void), "closing") : Effect.succeed(s))
      }).pipe(Scope.provide(scope))
      yield* Scope.addFinalizer(scope, Deferred.succeed(closed, undefined))
      assert.strictEqual(yield* Dispatcher.call(d, "close"), "closing")
      yield* Dispatcher.awaitStop(d)
      yield* Deferred.await(closed)
    }))

  it.effect("shutdown from another fiber still waits for the children to end", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const d = yield* Dispatcher.make<string, string>({
        keyOf: (s) => s,
        spawn: (child) => Dispatcher.serve(child, (s) => Effect.as(Deferred.await(gate), s))
      })
      const held = yield* Dispatcher.send(d, "a")
      yield* settle
      const stopping = yield* Effect.forkChild(Dispatcher.shutdown(d))
      yield* settle
      assert.isFalse(isDone(stopping))
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(stopping)
      assert.strictEqual(yield* Deferred.await(held), "a")
    }).pipe(Effect.scoped))
})

/** A tree of three levels (groups -> topics -> leaves) whose leaf `stuck` never answers. */
const stuckTree = (options: {
  readonly root?: Dispatcher.Options
  readonly topics?: Dispatcher.Options
  readonly leaves?: Dispatcher.Options
}) =>
  Dispatcher.make<Rq & { readonly leaf: string }, string>({
    keyOf: (r) => r.group,
    spawn: (group) =>
      Dispatcher.runChild(group, {
        keyOf: (r: Rq & { readonly leaf: string }) => r.topic,
        spawn: (topic) =>
          Dispatcher.runChild(topic, {
            keyOf: (r: Rq & { readonly leaf: string }) => r.leaf,
            spawn: (leaf) =>
              Dispatcher.serve(leaf, (r: Rq & { readonly leaf: string }) =>
                r.leaf === "stuck" ? Effect.never : Effect.succeed(`${r.group}/${r.topic}/${r.leaf}`))
          }, options.leaves)
      }, options.topics)
  }, options.root)

const at = (group: string, topic: string, leaf: string, n = 0) => ({ ...rq(group, topic, n), leaf })

describe("shutdownTimeout", () => {
  it.effect("without it, a child stuck for ever keeps the stop waiting (the seed's behaviour)", () =>
    Effect.gen(function*() {
      // (a scope of its own, never closed: nothing could close it)
      const d = yield* stuckTree({}).pipe(Scope.provide(yield* Scope.make()))
      yield* Dispatcher.send(d, at("g", "t", "stuck"))
      yield* settle
      const stopping = yield* Effect.forkChild(Dispatcher.shutdown(d))
      yield* TestClock.adjust("1 hour")
      assert.isFalse(isDone(stopping))
      yield* Fiber.interrupt(stopping)
    }))

  for (const level of ["root", "topics", "leaves"] as const) {
    it.effect(`set on the ${level} level: a stuck leaf is interrupted once it passes; what it held and what waited is answered Unavailable`, () =>
      Effect.gen(function*() {
        const d = yield* stuckTree({ [level]: { shutdownTimeout: "5 seconds" } })
        const held = yield* Dispatcher.send(d, at("g", "t", "stuck", 1))
        const waiting = yield* Dispatcher.send(d, at("g", "t", "stuck", 2))
        const served = yield* Dispatcher.call(d, at("g", "t", "fine"))
        assert.strictEqual(served, "g/t/fine")
        const stopping = yield* Effect.forkChild(Dispatcher.shutdown(d))
        yield* TestClock.adjust("4999 millis")
        assert.isFalse(isDone(stopping))
        yield* TestClock.adjust("1 millis")
        yield* Fiber.join(stopping)
        for (const answer of [held, waiting]) {
          const error = yield* Effect.flip(Deferred.await(answer))
          assert.strictEqual(error._tag, "Unavailable")
        }
        assert.strictEqual((yield* Dispatcher.stats(d)).live, 0)
      }).pipe(quiet))
  }

  it.effect("zero: a stop interrupts the children at once", () =>
    Effect.gen(function*() {
      const d = yield* stuckTree({ root: { shutdownTimeout: 0 } })
      const held = yield* Dispatcher.send(d, at("g", "t", "stuck"))
      yield* settle
      yield* Dispatcher.shutdown(d)
      assert.strictEqual((yield* Effect.flip(Deferred.await(held)))._tag, "Unavailable")
    }).pipe(quiet))

  it.effect("the self-call trap: a child that calls its own key waits on itself; shutdownTimeout ends the stop", () =>
    Effect.gen(function*() {
      const self = yield* Deferred.make<Dispatcher.Dispatcher<string, string>>()
      const d = yield* Dispatcher.make<string, string>({
        keyOf: () => "k",
        spawn: (child) =>
          Dispatcher.serve(child, (s) =>
            s === "again"
              ? Effect.flatMap(Deferred.await(self), (d) => Effect.orDie(Dispatcher.call(d, "inner")))
              : Effect.succeed(s))
      }, { shutdownTimeout: "1 second" })
      yield* Deferred.succeed(self, d)
      const outer = yield* Dispatcher.send(d, "again")
      yield* settle
      const stopping = yield* Effect.forkChild(Dispatcher.shutdown(d))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(stopping)
      assert.strictEqual((yield* Effect.flip(Deferred.await(outer)))._tag, "Unavailable")
    }).pipe(quiet))

  it.effect("the self-call trap with a requestTimeout: the inner call times out and the child goes on", () =>
    Effect.gen(function*() {
      const self = yield* Deferred.make<Dispatcher.Dispatcher<string, string>>()
      const d = yield* Dispatcher.make<string, string>({
        keyOf: () => "k",
        spawn: (child) =>
          Dispatcher.serve(child, (s) =>
            s === "again"
              ? Effect.flatMap(Deferred.await(self), (d) =>
                Dispatcher.call(d, "inner").pipe(
                  Effect.catchTag("RequestTimeout", () => Effect.succeed("timed out")),
                  Effect.orDie
                ))
              : Effect.succeed(s))
      }, { requestTimeout: "1 second" })
      yield* Deferred.succeed(self, d)
      const outer = yield* Dispatcher.send(d, "again")
      yield* TestClock.adjust("1 second")
      // the outer request shares the same budget: both deadlines pass together
      assert.strictEqual((yield* Effect.flip(Deferred.await(outer)))._tag, "RequestTimeout")
      yield* Dispatcher.shutdown(d)
    }))

  it.effect("it is logged when it passes", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const d = yield* stuckTree({ root: { shutdownTimeout: "1 second", name: "groups" } })
      yield* Dispatcher.send(d, at("g", "t", "stuck"))
      yield* settle
      const stopping = yield* Effect.forkChild(Dispatcher.shutdown(d))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(stopping)
      const warning = logs.entries.find((e) => e.level === "Warn")
      assert.match(String([warning?.message].flat()[0]), /stop waited 1000 ms \(shutdownTimeout\) for 1 children; interrupting them/)
      assert.deepStrictEqual(warning?.annotations, { dispatcher: "groups" })
    }).pipe(Effect.provide(logs.layer))
  })
})

describe("restart without delay", () => {
  it.live("a Schedule.forever crash loop yields: other keys are served meanwhile, and the log is not flooded", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      let spawns = 0
      const d = yield* Dispatcher.make<string, string>({
        keyOf: (s) => s,
        spawn: (child) =>
          child.key === "bad"
            ? Effect.flatMap(Effect.sync(() => spawns++), () => Effect.flatMap(Effect.yieldNow, () => Effect.fail("boom")))
            : Dispatcher.serve(child, Effect.succeed)
      }, { restart: Schedule.forever })
      yield* Dispatcher.send(d, "bad")
      let served = 0
      for (let i = 0; i < 50; i++) {
        assert.strictEqual(yield* Dispatcher.call(d, `good${i}`), `good${i}`)
        served++
        yield* Effect.sleep("1 millis")
      }
      assert.strictEqual(served, 50)
      assert.isAbove(spawns, 10)
      // the first ten failures, then every power of ten
      const warned = logs.entries.filter((e) => e.level === "Warn").length
      assert.isAtMost(warned, 10 + Math.floor(Math.log10(spawns)))
    }).pipe(Effect.scoped, Effect.provide(logs.layer))
  })
})
