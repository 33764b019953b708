/**
 * A runner process for the failover tests (started by `support/cluster.ts`):
 * the tracked entities (`tracked.ts`) on this process, over
 * `Sharded.layerPostgres`, their children recording to the test's database.
 *
 * Environment: `DATABASE_URL`, `RUNNER_NAME`, `RUNNER_PORT`; optional
 * `RECORD_URL` (where the children record, if not the cluster's database URL),
 * `TIMINGS` (JSON, over the fixture's `timings`: another process's timings),
 * `CALL_SCHEMA=v2` (the request Schema of a later version: a rolling deploy),
 * `REQUEST_TIMEOUT` (the runner's `requestTimeout`), `RECORD=0` (the children
 * record nothing: a test that stops the database itself). Prints `READY` once its
 * layers are built. SIGTERM (or SIGINT) stops it gracefully, the way an
 * in-process root stops, and it exits 0; it exits 3 when its stdin closes
 * (its test process went, however it went).
 */
import { NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Cause, type Duration, Effect, Exit, Layer, Redacted, Schedule } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { Sharded } from "../../src/index.js"
import { timings } from "./fixture.js"
import { type Call, CallV2, factory, Served, StoredTracked, Tracked } from "./tracked.js"

const env = (name: string): string => {
  const value = process.env[name]
  if (value === undefined || value === "") throw new Error(`${name} is not set`)
  return value
}

const name = env("RUNNER_NAME")
const port = Number(env("RUNNER_PORT"))
const url = env("DATABASE_URL")
const recordUrl = process.env["RECORD_URL"] ?? url
const own = process.env["TIMINGS"] === undefined ? {} : JSON.parse(process.env["TIMINGS"])
const v2 = process.env["CALL_SCHEMA"] === "v2"
const requestTimeout = process.env["REQUEST_TIMEOUT"]
const recording = process.env["RECORD"] !== "0"

process.stdin.resume()
process.stdin.once("close", () => process.exit(3))
process.stdin.once("end", () => process.exit(3))

const cluster = Sharded.layerPostgres({
  url,
  runnerAddress: { host: "127.0.0.1", port },
  shardingConfig: { ...timings, ...own }
})

const options: Sharded.RunnerOptions = {
  mailboxCapacity: 64,
  restart: Schedule.spaced("20 millis").pipe(Schedule.upTo({ times: 2 })),
  ...(requestTimeout === undefined ? {} : { requestTimeout: requestTimeout as Duration.Input })
}

/** The runners, their children recording through a SQL client of their own. */
const runners = Layer.unwrap(Effect.gen(function*() {
  const sql = recording ? yield* SqlClient : undefined
  if (v2) {
    // the same entities, as a later version defines the request
    const Tracked2 = Sharded.entity("Tracked", { request: CallV2, success: Served, keyOf: (call) => call.key })
    const Stored2 = Sharded.entity("StoredTracked", {
      request: CallV2,
      success: Served,
      keyOf: (call) => call.key,
      persisted: true
    })
    const children = factory<typeof CallV2.Type>(name, sql, (call) => call.millis)
    return Layer.mergeAll(
      Sharded.runner(Tracked2, children, { ...options, name }),
      Sharded.runner(Stored2, children, { ...options, name: `${name}-stored` })
    )
  }
  const children = factory<Call>(name, sql, (call) => call.ms)
  return Layer.mergeAll(
    Sharded.runner(Tracked, children, { ...options, name }),
    Sharded.runner(StoredTracked, children, { ...options, name: `${name}-stored` })
  )
})).pipe(Layer.provide(PgClient.layer({ url: Redacted.make(recordUrl), maxConnections: 4 })))

const ready = Layer.effectDiscard(Effect.sync(() => console.log("READY")))

const main = Layer.launch(ready.pipe(Layer.provide(runners), Layer.provide(cluster))).pipe(
  Effect.annotateLogs({ runner: name })
)

// a stop asked for with SIGTERM is a clean exit: 0, not the 130 of an interrupted program
NodeRuntime.runMain(main, {
  teardown: (exit, onExit) =>
    onExit(Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : 1)
})
