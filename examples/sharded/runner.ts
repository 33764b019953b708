/**
 * One runner process of the sharded example: the accounts' children for the
 * shards it holds. Started by `main.ts` (environment: DATABASE_URL,
 * RUNNER_NAME, RUNNER_PORT); prints READY once it is a member of the cluster.
 * SIGTERM stops it gracefully (exit 0); it exits if its orchestrator goes.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Logger, References } from "effect"
import { Sharded } from "effect-dispatcher"
import { accounts, Accounts, env, exitWhenDone, exitWithParent, timings } from "./shared.js"

const name = env("RUNNER_NAME")
exitWithParent()

const Cluster = Sharded.layerPostgres({
  url: env("DATABASE_URL"),
  runnerAddress: { host: "127.0.0.1", port: Number(env("RUNNER_PORT")) },
  shardingConfig: timings
})

const Runner = Sharded.runner(Accounts, accounts(name), { name, mailboxCapacity: 64 }).pipe(
  Layer.provide(Cluster)
)

const main = Layer.launch(
  Layer.effectDiscard(Effect.sync(() => console.log("READY"))).pipe(Layer.provide(Runner))
).pipe(
  // the engine's warnings only: the driver tells the story
  Effect.provideService(References.MinimumLogLevel, "Error"),
  Effect.provide(Logger.layer([Logger.consolePretty()]))
)

NodeRuntime.runMain(main, { teardown: exitWhenDone })
