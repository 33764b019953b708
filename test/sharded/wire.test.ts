/**
 * What crosses the engine's wire, in one process on the engine's in-memory
 * test cluster (`TestRunner`, which serializes every message as a remote one
 * would be): the request, the answer and the user's error cross as JSON text
 * encoded by the entity's Schemas. `undefined` crosses where the Schema has
 * it; values JSON cannot carry (a bigint or a cycle under `Schema.Unknown`)
 * are a typed `SchemaMismatch` naming the side, never a defect or a hang.
 * Where the runner has a tracer and the caller none, the caller makes no span
 * of its own: the runner's span for a request is a child of the caller's span.
 */
import { assert, layer } from "@effect/vitest"
import { Cause, Context, Duration, Effect, Exit, Layer, Option, Schema, Tracer } from "effect"
import * as TestRunner from "effect/cluster/TestRunner"
import { Dispatcher, Sharded } from "../../src/index.js"

const Ask = Schema.Struct({ key: Schema.String, give: Schema.String, extra: Schema.optional(Schema.Unknown) })
type Ask = typeof Ask.Type

class Refused extends Schema.TaggedError<Refused>()("Refused", { why: Schema.String }) {}

/** The entity under test, by name: one per cluster below. */
const wireEntity = (name: string) =>
  Sharded.entity(name, {
    request: Ask,
    // undefined is an answer of its own: Schema.Unknown's JSON codec accepts only JSON values
    success: Schema.Union([Schema.Undefined, Schema.Unknown]),
    error: Refused,
    keyOf: (ask) => ask.key
  })

const Wire = wireEntity("Wire")

/** A tracer that keeps the spans it makes in `spans`. */
const recording = (spans: Array<Tracer.Span>) =>
  Tracer.make({
    span(options) {
      const span = Tracer.nativeTracer.span(options)
      spans.push(span)
      return span
    }
  })

class Handle extends Context.Service<Handle, Dispatcher.Dispatcher<Ask, unknown, Refused>>()(
  "test/sharded/wire/Handle"
) {}

const cyclic = (): unknown => {
  const value: Record<string, unknown> = {}
  value["self"] = value
  return value
}

const answers: Record<string, () => Effect.Effect<unknown, Refused>> = {
  nothing: () => Effect.succeed(undefined),
  nested: () => Effect.succeed({ list: [1, "two", null, { three: true }], text: "ü 🚀 \"quoted\"\n" }),
  bigint: () => Effect.succeed({ n: 1n }),
  cycle: () => Effect.succeed(cyclic()),
  refuse: () => Effect.fail(new Refused({ why: "said no" }))
}

const factory: Dispatcher.Factory<Ask, unknown, Refused> = {
  keyOf: (ask) => ask.key,
  spawn: Dispatcher.serveWith((ask) => answers[ask.give]!())
}

const Cluster = Layer.mergeAll(Sharded.runner(Wire, factory), Sharded.layer(Handle, Wire)).pipe(
  Layer.provideMerge(TestRunner.layer)
)

const errorOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  exit._tag === "Failure" ? Option.getOrUndefined(Cause.findErrorOption(exit.cause)) : undefined

/** A call refused with a SchemaMismatch for `side`, saying `what`. */
const assertMismatch = (exit: Exit.Exit<unknown, unknown>, side: "request" | "answer", what: string) => {
  const error = errorOf(exit)
  assert.instanceOf(error, Dispatcher.SchemaMismatch)
  assert.strictEqual(error.side, side)
  assert.include(error.what, what)
}

const call = (ask: Ask) =>
  Effect.gen(function*() {
    const handle = yield* Handle
    return yield* Effect.exit(Dispatcher.call(handle, ask))
  }).pipe(Effect.timeout("10 seconds"))

layer(Cluster, { timeout: Duration.seconds(30), excludeTestServices: true })("the wire between caller and runner", (it) => {
  it.effect("requests, answers and the user's errors cross as JSON text, undefined and unicode included", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* call({ key: "w1", give: "nothing" }), Exit.succeed(undefined))
      assert.deepStrictEqual(
        yield* call({ key: "w1", give: "nested", extra: { a: [1, 2] } }),
        Exit.succeed({ list: [1, "two", null, { three: true }], text: "ü 🚀 \"quoted\"\n" })
      )
      const refused = errorOf(yield* call({ key: "w1", give: "refuse" }))
      assert.instanceOf(refused, Refused)
      assert.strictEqual(refused.why, "said no")
    }))

  it.effect("a request JSON cannot carry is a SchemaMismatch at the caller, not sent", () =>
    Effect.gen(function*() {
      for (const extra of [{ n: 1n }, cyclic()]) {
        assertMismatch(yield* call({ key: "w2", give: "nothing", extra }), "request", "the request did not encode at the caller")
      }
      // the key goes on
      assert.deepStrictEqual(yield* call({ key: "w2", give: "nothing" }), Exit.succeed(undefined))
    }))

  it.effect("an answer JSON cannot carry is a SchemaMismatch from the runner, which goes on", () =>
    Effect.gen(function*() {
      for (const give of ["bigint", "cycle"]) {
        assertMismatch(yield* call({ key: "w3", give }), "answer", "the answer did not encode on the runner")
      }
      assert.deepStrictEqual(yield* call({ key: "w3", give: "nothing" }), Exit.succeed(undefined))
    }))

  it.effect("a call is one client span, Sharded.call with the key, parent of the runner's span for it", () =>
    Effect.gen(function*() {
      const spans: Array<Tracer.Span> = []
      const exit = yield* call({ key: "w4", give: "nothing" }).pipe(Effect.provideService(Tracer.Tracer, recording(spans)))
      assert.deepStrictEqual(exit, Exit.succeed(undefined))
      const clients = spans.filter((span) => span.kind === "client")
      assert.deepStrictEqual(clients.map((span) => [span.name, span.attributes.get("dispatcher.key")]), [
        ["Sharded.call", "w4"]
      ])
      // the engine makes no client span of its own, and carries the caller's to the runner
      const parentOf = (span: Tracer.Span) => Option.getOrUndefined(span.parent)
      const served = spans.filter((span) => parentOf(span)?.spanId === clients[0]!.spanId)
      assert.isAbove(served.length, 0, spans.map((span) => `${span.kind} ${span.name}`).join(", "))
    }))
})

/** A tracer for the runner's side only: the calls below are made without one. */
const runnerSpans: Array<Tracer.Span> = []
const runnerTracer = recording(runnerSpans)

const Untraced = wireEntity("WireUntraced")

class UntracedHandle extends Context.Service<UntracedHandle, Dispatcher.Dispatcher<Ask, unknown, Refused>>()(
  "test/sharded/wire/UntracedHandle"
) {}

const TracedRunner = Layer.mergeAll(Sharded.runner(Untraced, factory), Sharded.layer(UntracedHandle, Untraced)).pipe(
  Layer.provideMerge(TestRunner.layer),
  Layer.provide(Layer.succeed(Tracer.Tracer, runnerTracer))
)

layer(TracedRunner, { timeout: Duration.seconds(30), excludeTestServices: true })("a caller without a tracer", (it) => {
  it.effect("makes no Sharded.call span: the runner's span for the request is a child of the caller's own", () =>
    Effect.gen(function*() {
      const handle = yield* UntracedHandle
      const outer = yield* Effect.gen(function*() {
        assert.deepStrictEqual(yield* Effect.exit(Dispatcher.call(handle, { key: "u1", give: "nothing" })), Exit.succeed(undefined))
        return yield* Effect.currentSpan
      }).pipe(Effect.withSpan("outer"), Effect.timeout("10 seconds"))
      const server = runnerSpans.filter((span) => span.kind === "server")
      assert.strictEqual(server.length, 1, runnerSpans.map((span) => `${span.kind} ${span.name}`).join(", "))
      assert.strictEqual(Option.getOrUndefined(server[0]!.parent)?.spanId, outer.spanId)
    }))
})
