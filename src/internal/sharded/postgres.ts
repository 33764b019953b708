/**
 * `Sharded.layerPostgres`: the engine's runner over `NodeClusterSocket`, with
 * `SqlMessageStorage` and `SqlRunnerStorage` on a PostgreSQL client, as
 * `NodeClusterSocket.layer` assembles it, its sockets' writes coalesced (see
 * `coalescing.ts`), and two services wrapped:
 *
 * - `RunnerStorage`: every lock acquisition and refresh confirms this runner's
 *   lease on the shards it returns (see `lease.ts`); a refresh that does not
 *   return a shard, and a release, end its lease at once. A runner that still
 *   holds a lease leaves the membership only once its locks are released.
 * - `Runners`: every attempt to deliver a volatile request reports to the
 *   call's probe (see `probe.ts`), so a caller with no runner for its key is
 *   answered `Unavailable` within a bound; and a volatile request whose runner
 *   is gone is answered `Unavailable` instead of being sent again to the next
 *   owner (it may have run on the dead runner: it must not run twice).
 *
 * Loaded on demand by `Sharded.layerPostgres` only: it imports the optional
 * peers `@effect/sql-pg` and `@effect/platform-node`.
 */
import * as NodeCrypto from "@effect/platform-node/NodeCrypto"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Clock, Context, Duration, Effect, Exit, Layer, Option, Redacted } from "effect"
import * as Reply from "effect/cluster/Reply"
import * as RunnerAddress from "effect/cluster/RunnerAddress"
import * as RunnerHealth from "effect/cluster/RunnerHealth"
import * as Runners from "effect/cluster/Runners"
import * as RunnerServer from "effect/cluster/RunnerServer"
import * as RunnerStorage from "effect/cluster/RunnerStorage"
import * as Sharding from "effect/cluster/Sharding"
import * as ShardingConfig from "effect/cluster/ShardingConfig"
import * as Snowflake from "effect/cluster/Snowflake"
import * as SqlMessageStorage from "effect/cluster/SqlMessageStorage"
import * as SqlRunnerStorage from "effect/cluster/SqlRunnerStorage"
import * as RpcSerialization from "effect/rpc/RpcSerialization"
import * as RpcServer from "effect/rpc/RpcServer"
import type * as SqlClient from "effect/sql/SqlClient"
import * as Os from "node:os"
import { Unavailable } from "../../DispatchError.js"
import * as Coalescing from "./coalescing.js"
import { Lease, ShardLease } from "./lease.js"
import { checkSettings, reach, targetOf } from "./startup.js"
import { CurrentProbe, Governed } from "./probe.js"
import { layerClusterTraced } from "./tracing.js"

/** A runner's address, as the options give it. */
export interface Address {
  readonly host: string
  readonly port: number
}

/** What `Sharded.layerPostgres` takes (see there). */
export interface Options {
  readonly url?: string | Redacted.Redacted | undefined
  readonly client?: Layer.Layer<SqlClient.SqlClient, unknown, unknown> | undefined
  readonly runnerAddress?: Address | undefined
  readonly listenAddress?: Address | undefined
  readonly clientOnly?: boolean | undefined
  readonly shardingConfig?: Partial<ShardingConfig.ShardingConfig["Service"]> | undefined
}

/** The engine's configuration for these options: programmatic, never read from the environment. */
export const configFor = (options: Options): ShardingConfig.ShardingConfig["Service"] => {
  const address = options.runnerAddress ?? { host: "localhost", port: 34431 }
  return {
    ...ShardingConfig.defaults,
    // the dispatcher bounds its children itself (`maxChildren`); the engine's
    // entities are only forwarders, so its cap (which refuses, never evicts)
    // stays out of the way unless asked for
    maxResidentEntities: "unbounded",
    ...options.shardingConfig,
    runnerAddress: options.clientOnly === true
      ? Option.none()
      : Option.some(RunnerAddress.make(address.host, address.port)),
    runnerListenAddress: options.listenAddress === undefined
      ? Option.none()
      : Option.some(RunnerAddress.make(options.listenAddress.host, options.listenAddress.port))
  }
}

/**
 * The engine's runner storage, confirming this runner's lease on every lock it
 * reports, and keeping a stopping runner in the membership until it has
 * released its locks.
 *
 * @internal
 */
export const leasedRunnerStorage = (lease: Lease) =>
  Layer.effect(
    RunnerStorage.RunnerStorage,
    Effect.gen(function*() {
      const inner = yield* RunnerStorage.RunnerStorage
      const clock = yield* Clock.Clock
      let unregisterAfterRelease: RunnerAddress.RunnerAddress | undefined = undefined
      return RunnerStorage.RunnerStorage.of({
        ...inner,
        acquire: (address, shardIds) => {
          const startedAt = lease.now(clock)
          return Effect.tap(inner.acquire(address, shardIds), (acquired) => Effect.sync(() => lease.confirm(acquired, startedAt)))
        },
        refresh: (address, shardIds) => {
          const asked = Array.from(shardIds)
          const startedAt = lease.now(clock)
          return Effect.tap(inner.refresh(address, asked), (held) =>
            Effect.sync(() => {
              const kept = new Set(held.map(String))
              for (const shard of asked) if (!kept.has(String(shard))) lease.drop(shard)
              lease.confirm(held, startedAt)
            }))
        },
        release: (address, shardId) => Effect.andThen(Effect.sync(() => lease.drop(shardId)), inner.release(address, shardId)),
        releaseAll: (address) =>
          Effect.andThen(Effect.sync(() => lease.dropAll()), inner.releaseAll(address)).pipe(
            Effect.ensuring(Effect.suspend(() => {
              const pending = unregisterAfterRelease
              unregisterAfterRelease = undefined
              return pending === undefined ? Effect.void : Effect.ignore(inner.unregister(pending))
            }))
          ),
        // A runner that still holds shards leaves the membership once it has released them: the
        // engine's stop unregisters first, and a runner that then saw it gone tried to take shards
        // still held here, failed, and tried again only a second later (SIGTERM failover 1.2 s).
        // One whose locks may have expired (the engine unregisters it for that) leaves at once.
        unregister: (address) =>
          lease.holdsAny(lease.now(clock))
            ? Effect.sync(() => void (unregisterAfterRelease = address))
            : inner.unregister(address)
      })
    })
  )

/**
 * The runners' connections, telling a volatile call's probe when its request
 * was written to one: from then on it may have reached the runner. The write
 * runs in the calling fiber (the RPC client encodes and sends there), where
 * the probe is.
 */
const probedProtocol = Layer.effect(
  Runners.RpcClientProtocol,
  Effect.gen(function*() {
    const inner = yield* Runners.RpcClientProtocol
    return Runners.RpcClientProtocol.of({
      ...inner,
      make: (address) =>
        Effect.map(inner.make(address), (protocol) => ({
          ...protocol,
          send: (clientId, request, transferables) =>
            request._tag !== "Request"
              ? protocol.send(clientId, request, transferables)
              : Effect.tap(protocol.send(clientId, request, transferables), () =>
                Effect.map(Effect.service(CurrentProbe), (probe) => {
                  if (probe !== undefined) probe.written = true
                }))
        }))
    })
  })
)

/** The engine's runner transport, reporting each volatile delivery attempt to its call's probe. */
const governedRunners = Layer.effect(
  Runners.Runners,
  Effect.gen(function*() {
    const inner = yield* Runners.makeRpc
    const snowflakes = yield* Snowflake.Generator
    return Runners.Runners.of({
      ...inner,
      send: (options) => {
        const message = options.message
        if (message._tag !== "OutgoingRequest") return inner.send(options)
        const probe = Context.get(message.context as Context.Context<never>, CurrentProbe)
        if (probe === undefined) return inner.send(options)
        probe.inFlight++
        probe.written = false
        return inner.send(options).pipe(
          // The runner went with the request: the engine would send it again to the
          // shard's next owner, and it may already have run on this one. A volatile
          // request must not run twice: answer it. One that was never written to
          // the runner's connection (it could not be opened, or was known broken)
          // never left this process: the engine sends it again, to the shard's
          // next owner once there is one, within the call's bound.
          Effect.catchTag("RunnerUnavailable", (error) =>
            !probe.written ? Effect.fail(error) : message.respond(
              new Reply.WithExit({
                requestId: message.envelope.requestId,
                id: snowflakes.nextUnsafe(),
                exit: Exit.fail(new Unavailable({ key: message.envelope.address.entityId }))
              }) as Reply.Reply<any>
            )),
          Effect.onExit((exit) =>
            Effect.sync(() => {
              probe.inFlight--
              if (exit._tag === "Failure") probe.attemptFailed()
            })
          )
        )
      },
      sendLocal: (options) => {
        const message = options.message
        const probe = message._tag === "OutgoingRequest"
          ? Context.get(message.context as Context.Context<never>, CurrentProbe)
          : undefined
        if (probe === undefined) return inner.sendLocal(options)
        return inner.sendLocal(options).pipe(
          Effect.onExit((exit) =>
            Effect.sync(() => {
              if (exit._tag === "Success") probe.delivered = true
              else probe.attemptFailed()
            })
          )
        )
      }
    })
  })
).pipe(Layer.provide(Snowflake.layerGenerator))

/** How long the first query of a start may take before the database is called unavailable. */
const reachWithin = Duration.seconds(10)

/** This process as the other members see it in a settings mismatch. */
const memberOf = (options: Options): string => {
  if (options.clientOnly === true) return `client ${process.pid}@${Os.hostname()}`
  const address = options.runnerAddress ?? { host: "localhost", port: 34431 }
  return `runner ${address.host}:${address.port}`
}

/**
 * The cluster layers for these options: `Sharding` over sockets, its storage
 * on the SQL client given (PostgreSQL), with the lease and the probes wired in.
 * Before the engine starts, the database must answer and this process's
 * settings must agree with the live members' (see `startup.ts`).
 */
export const layer = <E, R>(
  options: Options,
  sql: Layer.Layer<SqlClient.SqlClient, E, R>
) => {
  const config = configFor(options)
  const target = options.url === undefined ? undefined : targetOf(options.url)
  const checked = Layer.effectDiscard(
    Effect.flatMap(reach(target, reachWithin), (reached) => checkSettings(config, memberOf(options), reached.database))
  ).pipe(Layer.provideMerge(sql))
  const lease = new Lease(Duration.toMillis(Duration.fromInputUnsafe(config.shardLockExpiration)))
  const configLayer = Layer.succeed(ShardingConfig.ShardingConfig, config)
  const serialization = RpcSerialization.layerSchemaBinary()
  // the engine's sockets, their writes coalesced (see coalescing.ts)
  const clientProtocol = Coalescing.layerClientProtocol
  const runners = governedRunners.pipe(Layer.provide(probedProtocol), Layer.provide(clientProtocol))
  const storage = Layer.mergeAll(
    SqlMessageStorage.layer.pipe(Layer.provide(NodeCrypto.layerDigest)),
    leasedRunnerStorage(lease).pipe(Layer.provide(Layer.orDie(SqlRunnerStorage.layer)))
  )
  const sharding = options.clientOnly === true
    ? Sharding.layer.pipe(Layer.provideMerge(runners), Layer.provide(RunnerHealth.layerNoop))
    : RunnerServer.layer.pipe(
      Layer.provide(RpcServer.layerProtocolSocketServer),
      Layer.provide(Coalescing.layerSocketServer),
      Layer.provideMerge(Sharding.layer),
      Layer.provideMerge(runners),
      Layer.provide(RunnerHealth.layerPing.pipe(Layer.provide(Runners.layerRpc), Layer.provide(clientProtocol)))
    )
  return sharding.pipe(
    Layer.provide(storage),
    Layer.provide(checked),
    Layer.provide(serialization),
    Layer.provideMerge(configLayer),
    Layer.provideMerge(Layer.succeed(ShardLease, options.clientOnly === true ? undefined : lease)),
    Layer.provideMerge(Layer.succeed(Governed, true)),
    // built where the engine is: whether the engine's context has a tracer for its spans
    Layer.provideMerge(layerClusterTraced)
  )
}

/** A PostgreSQL client for a URL: a connection attempt gives up after 5 seconds. */
export const client = (url: string | Redacted.Redacted) =>
  PgClient.layer({ url: typeof url === "string" ? Redacted.make(url) : url, connectTimeout: "5 seconds" })
