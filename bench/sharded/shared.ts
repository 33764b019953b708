/**
 * What the sharded benchmark's processes share: the two entities under test
 * (a raw `effect/cluster` Entity with one echo RPC, and a `Sharded.entity`
 * whose children echo), their persisted twins, and the engine settings.
 */
import { NodeClusterSocket, NodeCrypto } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted, Schema } from "effect"
import * as ClusterSchema from "effect/cluster/ClusterSchema"
import * as Entity from "effect/cluster/Entity"
import * as RunnerHealth from "effect/cluster/RunnerHealth"
import * as Runners from "effect/cluster/Runners"
import * as ShardingConfig from "effect/cluster/ShardingConfig"
import * as SocketRunner from "effect/cluster/SocketRunner"
import * as SqlMessageStorage from "effect/cluster/SqlMessageStorage"
import * as SqlRunnerStorage from "effect/cluster/SqlRunnerStorage"
import * as Rpc from "effect/rpc/Rpc"
import * as RpcSerialization from "effect/rpc/RpcSerialization"
import { Dispatcher, Sharded } from "effect-dispatcher"
import { timings } from "../../examples/sharded/timings.js"
// the sockets' module itself, not a copy: the package does not export it
import * as Coalescing from "../../src/internal/sharded/coalescing.js"

/** `raw-coalesced`: the raw entity on the sockets `Sharded.layerPostgres` uses (writes coalesced), to show the dispatcher's own cost */
export type Impl = "raw" | "raw-coalesced" | "sharded"
export type Mode = "volatile" | "persisted"

export const Ping = Schema.Struct({ key: Schema.String, n: Schema.Number })
export type Ping = typeof Ping.Type

/** The raw entity's spans: the engine's default, or `BENCH_RAW_TRACING` (see `main.ts`). */
const rawTracing = process.env["BENCH_RAW_TRACING"] ?? ""
if (!["", "none", "client", "server", "both"].includes(rawTracing)) {
  throw new Error(`BENCH_RAW_TRACING: expected none, client, server or both, got ${JSON.stringify(rawTracing)}`)
}
const echoRpc = Rpc.make("Echo", { payload: Ping, success: Schema.Number })
const Echo = rawTracing === ""
  ? echoRpc
  : echoRpc.annotate(Rpc.TracingEnabled, rawTracing as "none" | "client" | "server" | "both")

/** The raw engine's entity: the same stack, no dispatcher. */
export const rawEntity = (mode: Mode) =>
  Entity.make(mode === "persisted" ? "RawStoredEcho" : "RawEcho", [
    mode === "persisted" ? Echo.annotate(ClusterSchema.Persisted, true) : Echo
  ])

/** The raw entity's behaviour: answer at once. */
export const rawHandlers = { Echo: ({ payload }: { readonly payload: Ping }) => Effect.succeed(payload.n) }

export const shardedEntity = (mode: Mode) =>
  Sharded.entity(mode === "persisted" ? "StoredEcho" : "Echo", {
    request: Ping,
    success: Schema.Number,
    keyOf: (ping) => ping.key,
    persisted: mode === "persisted"
  })

/** The dispatcher's children: the same echo. */
export const echo: Dispatcher.Factory<Ping, number> = {
  keyOf: (ping) => ping.key,
  spawn: Dispatcher.serveWith((ping) => Effect.succeed(ping.n))
}

/**
 * Engine settings, the same for every process and both implementations: the
 * example's and the tests' timings (`examples/sharded/timings.ts`: they hold on
 * a loaded 2-core machine), over which
 * `BENCH_CONFIG` (JSON) may lay others, to find what governs persisted
 * latency (`entityMessagePollInterval`, `entityReplyPollInterval`, ...).
 */
export const settings: Partial<ShardingConfig.ShardingConfig["Service"]> = {
  ...timings,
  ...(process.env["BENCH_CONFIG"] === undefined ? {} : JSON.parse(process.env["BENCH_CONFIG"]))
}

/**
 * The raw entity's cluster: `NodeClusterSocket.layer` with SQL storage, as
 * the engine ships it (`raw`), or assembled the same way on the sockets of
 * `Sharded.layerPostgres`, their writes coalesced (`raw-coalesced`).
 */
export const rawCluster = (impl: Impl, url: string, config: Partial<ShardingConfig.ShardingConfig["Service"]>, clientOnly: boolean) => {
  const sql = PgClient.layer({ url: Redacted.make(url) })
  if (impl !== "raw-coalesced") {
    return NodeClusterSocket.layer({ clientOnly, storage: "sql", shardingConfig: config }).pipe(Layer.provide(sql))
  }
  const sockets = clientOnly
    ? Layer.provide(SocketRunner.layerClientOnly, Coalescing.layerClientProtocol)
    : Layer.provide(SocketRunner.layer, [Coalescing.layerSocketServer, Coalescing.layerClientProtocol]).pipe(
      Layer.provide(RunnerHealth.layerPing.pipe(Layer.provide(Runners.layerRpc), Layer.provide(Coalescing.layerClientProtocol)))
    )
  return sockets.pipe(
    Layer.provideMerge(SqlMessageStorage.layer.pipe(Layer.provide(NodeCrypto.layerDigest))),
    Layer.provide(Layer.orDie(SqlRunnerStorage.layer)),
    Layer.provide(ShardingConfig.layerFromEnv(config)),
    Layer.provide(RpcSerialization.layerSchemaBinary()),
    Layer.provide(sql)
  )
}

export const env = (name: string): string => {
  const value = process.env[name]
  if (value === undefined || value === "") throw new Error(`${name} is not set (run npm run bench:sharded)`)
  return value
}

/** Exit when the orchestrator goes: its pipe to our stdin closes. */
export const exitWithParent = (): void => {
  process.stdin.resume()
  process.stdin.once("close", () => process.exit(3))
  process.stdin.once("end", () => process.exit(3))
}
