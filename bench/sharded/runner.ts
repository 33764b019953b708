/**
 * A runner process of the sharded benchmark: the raw engine's entity on the
 * engine's own socket layer with SQL storage (`IMPL=raw`), the same on
 * coalesced sockets (`IMPL=raw-coalesced`), or a
 * `Sharded.runner` over `Sharded.layerPostgres` (`IMPL=sharded`), for one
 * delivery `MODE`. Prints READY; exits when its stdin closes.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Option, References } from "effect"
import * as RunnerAddress from "effect/cluster/RunnerAddress"
import { Sharded } from "effect-dispatcher"
import { echo, env, exitWithParent, type Impl, type Mode, rawCluster, rawEntity, rawHandlers, settings, shardedEntity } from "./shared.js"

exitWithParent()
const impl = env("IMPL") as Impl
const mode = env("MODE") as Mode
const url = env("DATABASE_URL")
const port = Number(env("RUNNER_PORT"))

const runner: Layer.Layer<never, unknown> = impl !== "sharded"
  ? rawEntity(mode).toLayer(rawHandlers, { mailboxCapacity: "unbounded", concurrency: "unbounded" }).pipe(
    Layer.provide(rawCluster(impl, url, {
      ...settings,
      maxResidentEntities: "unbounded",
      runnerAddress: Option.some(RunnerAddress.make("127.0.0.1", port))
    }, false))
  )
  : Sharded.runner(shardedEntity(mode), echo, { mailboxCapacity: 64 }).pipe(
    Layer.provide(
      Sharded.layerPostgres({ url, runnerAddress: { host: "127.0.0.1", port }, shardingConfig: settings })
    )
  )

NodeRuntime.runMain(
  Layer.launch(Layer.effectDiscard(Effect.sync(() => console.log("READY"))).pipe(Layer.provide(runner))).pipe(
    Effect.provideService(References.MinimumLogLevel, "Error")
  )
)
