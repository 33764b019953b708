/**
 * Whether the engine's span for each request a runner serves can reach a
 * tracer. The engine runs an entity's requests in its own context: the
 * runner's registration context over the cluster layer's. With Effect's
 * native default tracer in both, the span goes nowhere, and making it (ids,
 * attributes, two context changes) was about 1% of a runner's CPU a request
 * (profiled, bench:sharded): such a runner's engine makes none.
 *
 * Pure Effect: it loads no cluster code.
 */
import { Context, Effect, Layer } from "effect"
import { isTraced } from "../effectInternals.js"

/**
 * Whether the cluster layer `Sharded.layerPostgres` built was given a tracer;
 * `undefined` for cluster layers built otherwise, whose context this project
 * cannot see (then a tracer is assumed).
 *
 * @internal
 */
export const ClusterTraced = Context.Reference<boolean | undefined>("effect-dispatcher/Sharded/ClusterTraced", {
  defaultValue: () => undefined
})

/**
 * `ClusterTraced` for the cluster layer it is built beside: whether that
 * layer's context has a tracer.
 *
 * @internal
 */
export const layerClusterTraced = Layer.effect(
  ClusterTraced,
  Effect.withFiber((fiber) => Effect.succeed(isTraced(fiber)))
)

/**
 * Whether a runner registering its entity here keeps the engine's span per
 * request: where this fiber or its cluster layer has a tracer.
 *
 * @internal
 */
export const keepsServerSpans: Effect.Effect<boolean> = Effect.withFiber((fiber) =>
  Effect.succeed(isTraced(fiber) || Context.get(fiber.context, ClusterTraced) !== false)
)
