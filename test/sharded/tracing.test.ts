/**
 * The engine's span per request on a runner, in one process on the engine's
 * in-memory test cluster (`TestRunner`): kept where the engine's context may
 * have a tracer, left out where neither the runner nor its cluster layer has
 * one (`Sharded.layerPostgres` says which; with Effect's native default
 * tracer the span goes nowhere). What a runner with a tracer makes is
 * `wire.test.ts`'s.
 *
 * The span is seen from the runner's fence, which its root asks inside the
 * request's own fiber when an idle child takes the request at once. Whether
 * `Sharded.layerPostgres`'s engine has a tracer is read off the layer built on
 * a fresh database.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Option, Schema, Tracer } from "effect"
import * as TestRunner from "effect/cluster/TestRunner"
import { Dispatcher, Sharded } from "../../src/index.js"
import { ClusterTraced } from "../../src/internal/sharded/tracing.js"
import { timings } from "../../examples/sharded/timings.js"
import { database } from "./support/postgres.js"

const Ping = Schema.Struct({ key: Schema.String })
type Ping = typeof Ping.Type

class Handle extends Context.Service<Handle, Dispatcher.Dispatcher<Ping, string>>()("test/sharded/tracing/Handle") {}

/** A runner whose fence records the span of the fiber that asks it, for the named entity. */
const cluster = (name: string, clusterTraced: boolean | undefined, seen: Array<string>) => {
  const entity = Sharded.entity(name, { request: Ping, success: Schema.String, keyOf: (ping) => ping.key })
  const fence = () => {
    const fiber = Fiber.getCurrent()
    const span = fiber === undefined ? undefined : Option.getOrUndefined(Context.getOption(fiber.context, Tracer.ParentSpan))
    seen.push(span === undefined ? "none" : span._tag === "Span" ? span.name : "external")
    return true
  }
  const factory: Dispatcher.Factory<Ping, string> = {
    keyOf: (ping) => ping.key,
    spawn: Dispatcher.serveWith((ping) => Effect.succeed(ping.key))
  }
  return Layer.mergeAll(Sharded.runner(entity, factory, { fence }), Sharded.layer(Handle, entity)).pipe(
    Layer.provideMerge(TestRunner.layer),
    Layer.provide(clusterTraced === undefined ? Layer.empty : Layer.succeed(ClusterTraced, clusterTraced))
  )
}

/** Two calls to one key: the second is taken at once by its idle child, inside the request's fiber. */
const twice = Effect.gen(function*() {
  const handle = yield* Handle
  yield* Dispatcher.call(handle, { key: "a" }).pipe(Effect.retry({ times: 50 }), Effect.timeout("10 seconds"))
  assert.strictEqual(yield* Dispatcher.call(handle, { key: "a" }), "a")
})

describe("the engine's span per request on a runner", () => {
  it.live("is left out where neither the runner nor its cluster layer has a tracer", () => {
    const seen: Array<string> = []
    return twice.pipe(
      Effect.provide(cluster("SpanDropped", false, seen)),
      Effect.andThen(Effect.sync(() => assert.strictEqual(seen.at(-1), "none", seen.join(", "))))
    )
  })

  it.live("is kept where the cluster layer is not Sharded.layerPostgres (its tracer unknown)", () => {
    const seen: Array<string> = []
    return twice.pipe(
      Effect.provide(cluster("SpanKept", undefined, seen)),
      Effect.andThen(Effect.sync(() => assert.strictEqual(seen.at(-1), "SpanKept.Call", seen.join(", "))))
    )
  })
})

describe("Sharded.layerPostgres says whether its engine has a tracer", () => {
  const built = (tracer: Tracer.Tracer | undefined) =>
    Effect.gen(function*() {
      const db = yield* database
      const cluster = Sharded.layerPostgres({ url: db.url, clientOnly: true, shardingConfig: timings })
      const context = yield* Layer.build(
        tracer === undefined ? cluster : cluster.pipe(Layer.provide(Layer.succeed(Tracer.Tracer, tracer)))
      )
      return Context.get(context, ClusterTraced)
    })

  it.live("no: with Effect's native default tracer", () =>
    Effect.scoped(Effect.map(built(undefined), (traced) => assert.strictEqual(traced, false))), 60_000)

  it.live("yes: with a tracer given to the cluster layer", () =>
    Effect.scoped(Effect.map(built(Tracer.make({ span: (options) => Tracer.nativeTracer.span(options) })), (traced) =>
      assert.strictEqual(traced, true))), 60_000)
})
