/**
 * A runner process for the sharded tests (started by `support/processes.ts`):
 * the fixture's entities on this process, over `Sharded.layerPostgres`.
 *
 * Environment: `DATABASE_URL`, `RUNNER_NAME`, `RUNNER_PORT`. Prints `READY`
 * once its layers are built; exits when its stdin closes (its test process
 * went, however it went), and stops gracefully on SIGTERM/SIGINT.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { Sharded } from "../../src/index.js"
import { factory, Jobs, runnerOptions, StoredJobs, timings } from "./fixture.js"

const env = (name: string): string => {
  const value = process.env[name]
  if (value === undefined || value === "") throw new Error(`${name} is not set`)
  return value
}

const name = env("RUNNER_NAME")
const port = Number(env("RUNNER_PORT"))

process.stdin.resume()
process.stdin.once("close", () => process.exit(3))
process.stdin.once("end", () => process.exit(3))

const cluster = Sharded.layerPostgres({
  url: env("DATABASE_URL"),
  runnerAddress: { host: "127.0.0.1", port },
  shardingConfig: timings
})

const runners = Layer.mergeAll(
  Sharded.runner(Jobs, factory(name), { ...runnerOptions, name }),
  Sharded.runner(StoredJobs, factory(name), { ...runnerOptions, name: `${name}-stored` })
)

const ready = Layer.effectDiscard(Effect.sync(() => console.log("READY")))

const main = Layer.launch(ready.pipe(Layer.provide(runners), Layer.provide(cluster))).pipe(
  Effect.annotateLogs({ runner: name })
)

NodeRuntime.runMain(main)
