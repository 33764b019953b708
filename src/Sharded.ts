/**
 * The same `Factory` across processes: keys spread over runner processes by
 * Effect's own distributed engine (`effect/cluster`: entities, shards,
 * runners over sockets) with PostgreSQL as its storage. A program moves from
 * one process to many by swapping one Layer: `Sharded.layer` provides, for
 * your own service tag, the same `Dispatcher.Dispatcher` handle that
 * `Dispatcher.layer` does, and `Dispatcher.call`, `send` and `stats` work on
 * it unchanged.
 *
 * - `entity`: what crosses the wire (Schemas of request, answer and error) and
 *   how a request is keyed; `persisted: true` for at-least-once delivery.
 * - `runner`: on each runner process, your unchanged `Factory` as the per-key
 *   child, under one in-process root with your options (`maxChildren` is per
 *   runner).
 * - `layer`: anywhere, the handle.
 * - `layerPostgres`: the common cluster (sockets, PostgreSQL storage).
 *
 * Loading this module loads no cluster code: the engine's modules (and the
 * optional peers `@effect/sql-pg` and `@effect/platform-node`) are loaded when
 * one of its layers is built.
 *
 * @module effect-dispatcher/Sharded
 * @since 0.1.0
 */
import type { Context, Duration, Layer, Option, Pipeable, Redacted, Schema, Scope } from "effect"
import { Effect, Layer as L, Option as O, Schema as S } from "effect"
import type { Sharding } from "effect/cluster/Sharding"
import type { ShardingConfig } from "effect/cluster/ShardingConfig"
import type { SocketServerError } from "effect/socket/SocketServer"
import type { SqlClient } from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import type * as Dispatcher from "./Dispatcher.js"
import * as DispatchErrors from "./DispatchError.js"
import type { InvalidOptions } from "./DispatchError.js"
import { EntityImpl, requestIds, TypeId as EntityTypeId } from "./internal/sharded/entity.js"
import type { DatabaseUnavailable, SettingsMismatch } from "./internal/sharded/errors.js"
import { settleScopePretenuring } from "./internal/sharded/pretenuring.js"

/**
 * `DispatchError.SchemaMismatch`, under this module's name too: a request or
 * its answer did not fit its Schema on its way between processes. It is one
 * of the `DispatchError`s, so a service tag typed
 * `Dispatcher.Dispatcher<Req, Res, E>` fits `Dispatcher.layer` and
 * `Sharded.layer` alike; only a sharded handle ever answers with it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher, Sharded } from "effect-dispatcher"
 *
 * declare const ledger: Dispatcher.Dispatcher<{ readonly user: string }, number>
 *
 * const balance = Dispatcher.call(ledger, { user: "ada" }).pipe(
 *   Effect.catchTag("SchemaMismatch", (e: Sharded.SchemaMismatch) => Effect.logError(e.message).pipe(Effect.as(0)))
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export const SchemaMismatch: typeof DispatchErrors.SchemaMismatch = DispatchErrors.SchemaMismatch

/**
 * See the `SchemaMismatch` class (`DispatchError.SchemaMismatch`).
 *
 * @example
 * ```ts
 * import type { Sharded } from "effect-dispatcher"
 *
 * const describe = (e: Sharded.SchemaMismatch): string => `${e.key} (${e.side}): ${e.what}`
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export type SchemaMismatch = DispatchErrors.SchemaMismatch

// the errors of starting a cluster member: documented where they are defined
export { DatabaseUnavailable, SettingsMismatch } from "./internal/sharded/errors.js"

/**
 * The type id of sharded entities.
 *
 * @example
 * ```ts
 * import { Sharded } from "effect-dispatcher"
 *
 * const isEntity = (u: unknown): boolean => typeof u === "object" && u !== null && Sharded.TypeId in u
 * ```
 *
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: "~effect-dispatcher/Sharded/Entity" = EntityTypeId

/**
 * What crosses the wire for one kind of keyed work, and how a request is
 * keyed: made by `entity`, used by `runner` and `layer`. Every process of a
 * cluster must define it alike (same name, compatible Schemas, same key).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Sharded } from "effect-dispatcher"
 *
 * const Deposits: Sharded.Entity<{ readonly user: string; readonly amount: number }, number> = Sharded.entity("Deposits", {
 *   request: Schema.Struct({ user: Schema.String, amount: Schema.Number }),
 *   success: Schema.Number,
 *   keyOf: (deposit) => deposit.user
 * })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Entity<in out Req, in out Res = void, in out E = never> extends Pipeable.Pipeable {
  readonly [TypeId]: typeof TypeId
  /** the engine's entity type: the same in every process of the cluster */
  readonly name: string
  readonly request: Schema.Codec<Req, unknown>
  readonly success: Schema.Codec<Res, unknown>
  readonly error: Schema.Codec<E, unknown>
  /** how a request is keyed: the key picks the shard, the runner and the child */
  readonly keyOf: (request: Req) => Dispatcher.Key
  /** at-least-once through the engine's message storage; otherwise volatile */
  readonly persisted: boolean
}

/**
 * The Schemas and key of an entity (see `entity`).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import type { Sharded } from "effect-dispatcher"
 *
 * const options: Sharded.EntityOptions<string, number, never> = {
 *   request: Schema.String,
 *   success: Schema.Number,
 *   keyOf: (word) => word
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface EntityOptions<Req, Res, E> {
  /** the request's Schema: what the caller encodes and a runner decodes */
  readonly request: Schema.Codec<Req, unknown>
  /** the answer's Schema */
  readonly success: Schema.Codec<Res, unknown>
  /** the Schema of your own error `E`; none by default (`E` is `never`) */
  readonly error?: Schema.Codec<E, unknown> | undefined
  /** how a request is keyed: the key picks the shard, the runner, and the child */
  readonly keyOf: (request: Req) => Dispatcher.Key
  /**
   * `true`: each request is stored (the engine's message storage) before the
   * caller is told it was accepted, and delivered at least once, to the key's
   * next owner too if its runner dies (make handlers idempotent with
   * `requestId`). Default: volatile, answered exactly once or with an error.
   */
  readonly persisted?: boolean | undefined
}

/**
 * Define a sharded entity: its name, the Schemas of what crosses the wire (the
 * request, the answer, your error), how a request is keyed, and whether
 * requests are persisted. A plain description: nothing runs, no cluster code
 * loads until a layer using it is built.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Sharded } from "effect-dispatcher"
 *
 * class Overdrawn extends Schema.TaggedError<Overdrawn>()("Overdrawn", { user: Schema.String }) {}
 *
 * const Deposit = Schema.Struct({ user: Schema.String, amount: Schema.Number })
 *
 * const Ledger = Sharded.entity("Ledger", {
 *   request: Deposit,
 *   success: Schema.Number,
 *   error: Overdrawn,
 *   keyOf: (deposit) => deposit.user,
 *   persisted: true
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const entity = <Req, Res = void, E = never>(
  name: string,
  options: EntityOptions<Req, Res, E>
): Entity<Req, Res, E> =>
  new EntityImpl<Req, Res, E>(
    name,
    options.request,
    options.success,
    (options.error ?? S.Never) as Schema.Codec<E, unknown>,
    options.keyOf,
    options.persisted === true
  )

/**
 * A runner's options: the in-process dispatcher's own, for the root that runs
 * this runner's children (`maxChildren` is a cap per runner), and:
 *
 * - `idleTimeToLive`: how long the engine keeps a key's entity on this runner
 *   with no request (the engine's `maxIdleTime`, checked about every 5 s);
 *   when it goes, the key's child is passivated. For a child that ends on time
 *   after its last request, give `serve` its own `idleTimeToLive` in your
 *   factory, as in-process. Default: the engine's `entityMaxIdleTime` (1 minute).
 * - `shutdownTimeout`: the root's (see `Dispatcher.Options`): how long a stop waits for children.
 *
 * @example
 * ```ts
 * import { Schedule } from "effect"
 * import type { Sharded } from "effect-dispatcher"
 *
 * const options: Sharded.RunnerOptions = {
 *   mailboxCapacity: 64,
 *   maxChildren: 10_000,
 *   requestTimeout: "5 seconds",
 *   restart: Schedule.exponential("20 millis").pipe(Schedule.upTo({ times: 5 })),
 *   idleTimeToLive: "2 minutes"
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface RunnerOptions extends Dispatcher.Options {
  readonly idleTimeToLive?: Duration.Input | undefined
}

/** The engine's modules, loaded when a layer is built: never by the package index. */
const engine = Effect.promise(() => import("./internal/sharded/engine.js"))

const implOf = <Req, Res, E>(self: Entity<Req, Res, E>): EntityImpl<Req, Res, E> => self as EntityImpl<Req, Res, E>

/**
 * Run the entity on this process: your unchanged `Factory` (`spawn`, `serve`,
 * `runChild` trees) as the per-key child, under one in-process root per runner
 * with the options given. Requests for the keys whose shards this runner holds
 * reach it; every in-process semantic holds here as it is (mailbox bound,
 * successors, restarts, `ChildFailed`, deadlines, passivation, graceful stop).
 *
 * A key's child lives only while this runner holds the key's shard: when the
 * engine moves the shard (a runner joins or leaves), the child is passivated
 * (it drains what it holds) before the shard is released. With
 * `layerPostgres`, the runner keeps a lease on each shard, 80% of
 * `shardLockExpiration` from the start of the lock refresh that last
 * confirmed it, and fences the shard on its own clock (monotonic, never
 * stretched by a wall clock set back) once the lease lapses (a runner frozen
 * past its lock, by SIGSTOP, a VM pause or a starved CPU): its root's
 * `fence` (`Dispatcher.Options.fence`) hands no request of the shard's keys
 * to a child any more, its requests in flight are answered
 * `Unavailable` (for a persisted entity, left in storage for the next owner)
 * and its children passivated. A frozen runner cannot act while frozen: its
 * children's lives overlap their successors' by the part of the freeze past
 * the failover, but they take no request once they resume, and end within
 * about a lease sweep (measured: 40-350 ms after SIGCONT). A handler already
 * running as the runner froze finishes when it resumes, or, with a
 * `requestTimeout`, is interrupted once its request is answered.
 *
 * On SIGTERM (give `NodeRuntime.runMain` a teardown that exits 0 on an
 * interruption) the runner stops as an in-process root does: the engine stops
 * sending, each child drains what it holds, the shards are released and the
 * process exits (measured: 0.2-0.7 s); its keys answer from other runners
 * within about a second. The factory's `keyOf` is replaced by the entity's,
 * which picked the runner; a `fence` of your own in the options applies too.
 *
 * Tracing: where a tracer is installed (given to this layer, or to the
 * cluster layer `layerPostgres` builds), the engine makes a span per request,
 * a child of the caller's `Sharded.call`. With neither (Effect's native
 * default, which nobody reads) it makes none; with cluster layers of your own
 * the span is always made, as the engine's context is not known here.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Schema } from "effect"
 * import { Dispatcher, Sharded } from "effect-dispatcher"
 *
 * const Ledger = Sharded.entity("Ledger", {
 *   request: Schema.Struct({ user: Schema.String, amount: Schema.Number }),
 *   success: Schema.Number,
 *   keyOf: (deposit) => deposit.user
 * })
 *
 * const LedgerRunner = Sharded.runner(Ledger, {
 *   keyOf: (deposit) => deposit.user,
 *   spawn: (child) => {
 *     let balance = 0
 *     return Dispatcher.serve(child, (deposit) => Effect.sync(() => (balance += deposit.amount)))
 *   }
 * }, { mailboxCapacity: 64, maxChildren: 10_000 })
 *
 * const Runner = LedgerRunner.pipe(
 *   Layer.provide(Sharded.layerPostgres({ url: "postgres://postgres@127.0.0.1/app", runnerAddress: { host: "10.0.0.5", port: 34431 } }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const runner = <Req, Res, E, R>(
  entity: Entity<Req, Res, E>,
  factory: Dispatcher.Factory<Req, Res, E, R>,
  options?: RunnerOptions
): Layer.Layer<never, InvalidOptions, Sharding | Exclude<R, Scope.Scope>> => {
  const { idleTimeToLive, ...core } = options ?? {}
  return L.effectDiscard(
    Effect.flatMap(engine, (m) => m.runner(implOf(entity), factory, core, { idleTimeToLive }))
  ) as Layer.Layer<never, InvalidOptions, Sharding | Exclude<R, Scope.Scope>>
}

/**
 * The calling side's options.
 *
 * - `unavailableAfter`: how long a volatile call may look for a runner for its
 *   key before it is answered `Unavailable` (no runner up, none holding the
 *   key's shard yet). Once the request is at a runner, the call waits for its
 *   answer (bound it with the runner's `requestTimeout`). Needs the cluster of
 *   `layerPostgres` (with the engine's own layers, a volatile call waits as the
 *   engine makes it wait). Default: 5 seconds. Persisted calls are not bound:
 *   stored, they are answered once a runner comes.
 *
 * @example
 * ```ts
 * import type { Sharded } from "effect-dispatcher"
 *
 * const options: Sharded.LayerOptions = { unavailableAfter: "2 seconds" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface LayerOptions {
  readonly unavailableAfter?: Duration.Input | undefined
}

/**
 * Provide, for your own service tag, the same `Dispatcher.Dispatcher` handle
 * that `Dispatcher.layer` provides, backed by the cluster: `Dispatcher.call`
 * and `send` reach the key's runner wherever it is. Errors are the in-process
 * classes plus your `E`, decoded from their Schemas (`SchemaMismatch`, one
 * of the `DispatchError`s, when a value does not fit its Schema):
 * the engine's `MailboxFull` is `TooManyRequests`; no runner, not assigned, or
 * a runner gone with the request is `Unavailable`; a child whose restarts gave
 * up is `ChildFailed`, its cause in words.
 *
 * Delivery, with `layerPostgres`:
 * - Volatile (the default): answered exactly once, by the key's child or with
 *   an error, and run by one child at most. A request that was written to a
 *   runner's connection when the runner died (it may have run there) is
 *   answered `Unavailable` as the connection drops (measured: 60-120 ms after
 *   SIGKILL), never sent again; one that never left this process (its
 *   runner's connection could not be opened) looks for the key's next owner,
 *   up to `unavailableAfter`. The engine cannot tell a request that reached the
 *   dead runner from one lost on the wire after it was written: those are
 *   `Unavailable` too, the safe side.
 * - Persisted (`persisted: true`): stored before it is sent, run at least once:
 *   when its runner dies the key's next owner runs it again (same
 *   `requestId`), and the caller gets that answer.
 *
 * What differs from in-process, and why:
 * - `send` accepts at once: a refusal (`TooManyRequests`, `Unavailable`)
 *   arrives through the Deferred, as the runner decides it.
 * - `stats` counts what this handle was answered (`accepted`, `rejected`,
 *   `withdrawn`); `live`, `spawned`, `successors` and `failures` are those of
 *   the entity's runners in this process (0 in a client-only process).
 * - `children` and `tree` show the runners in this process only: children of
 *   remote runners live in other processes.
 * - `shutdown` stops this handle: new calls get `Unavailable`, and it returns
 *   once the calls in flight are answered. The end of the layer only refuses
 *   new calls (a persisted call in flight may wait long for a runner: its
 *   caller decides); a `send` still running then is answered `Unavailable`.
 *   Runners stop with their own layers.
 * - Tracing: where a tracer is installed, a call is one client span,
 *   `Sharded.call` (attributes `dispatcher.name`, `dispatcher.key`), which
 *   the engine carries to the runner as the parent of its span for the
 *   request. With none (Effect's native default, which nobody reads) it makes
 *   none, as the in-process dispatcher's `send` and `call` make none.
 *
 * @example
 * ```ts
 * import { Context, Effect, Layer, Schema } from "effect"
 * import { Dispatcher, Sharded } from "effect-dispatcher"
 *
 * interface Deposit { readonly user: string; readonly amount: number }
 *
 * // the same tag as for Dispatcher.layer: only the Layer differs
 * class Ledger extends Context.Service<Ledger, Dispatcher.Dispatcher<Deposit, number>>()("app/Ledger") {}
 *
 * const LedgerEntity = Sharded.entity("Ledger", {
 *   request: Schema.Struct({ user: Schema.String, amount: Schema.Number }),
 *   success: Schema.Number,
 *   keyOf: (deposit) => deposit.user
 * })
 *
 * const LedgerLive = Sharded.layer(Ledger, LedgerEntity).pipe(
 *   Layer.provide(Sharded.layerPostgres({ url: "postgres://postgres@127.0.0.1/app", clientOnly: true }))
 * )
 *
 * const program = Effect.flatMap(Effect.service(Ledger), (ledger) => Dispatcher.call(ledger, { user: "ada", amount: 10 }))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <Self, Req, Res, E>(
  tag: Context.Key<Self, Dispatcher.Dispatcher<Req, Res, E>>,
  entity: Entity<Req, Res, E>,
  options?: LayerOptions
): Layer.Layer<Self, never, Sharding> =>
  L.effect(tag, Effect.flatMap(engine, (m) => m.handle(implOf(entity), options ?? {}))) as Layer.Layer<
    Self,
    never,
    Sharding
  >

/**
 * A runner's address, as other runners reach it.
 *
 * @example
 * ```ts
 * import type { Sharded } from "effect-dispatcher"
 *
 * const here: Sharded.Address = { host: "10.0.0.5", port: 34431 }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Address {
  readonly host: string
  readonly port: number
}

/**
 * The options of `layerPostgres`, besides the database (`url` or `client`).
 *
 * - `runnerAddress`: how other processes reach this runner (default
 *   `localhost:34431`); `listenAddress`: where it listens, if not there.
 * - `clientOnly`: a process that only calls: it hosts no children and takes no
 *   shards.
 * - `shardingConfig`: the engine's settings (`ShardingConfig`), over its
 *   defaults; given here, never read from the environment. Every process of a
 *   cluster must use the same timings. `maxResidentEntities` defaults to
 *   `"unbounded"` here: the engine's entities are only forwarders, and the
 *   children are capped by the runner's `maxChildren`.
 *
 * @example
 * ```ts
 * import type { Sharded } from "effect-dispatcher"
 *
 * const options: Sharded.PostgresOptions = {
 *   url: "postgres://postgres@127.0.0.1:5432/app",
 *   runnerAddress: { host: "10.0.0.5", port: 34431 },
 *   shardingConfig: { shardLockExpiration: "10 seconds" }
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type PostgresOptions<E = never, R = never> =
  & {
    readonly runnerAddress?: Address | undefined
    readonly listenAddress?: Address | undefined
    readonly clientOnly?: boolean | undefined
    readonly shardingConfig?: Partial<ShardingConfig["Service"]> | undefined
  }
  & (
    | {
      /** a PostgreSQL connection URL (`postgres://user@host:5432/database`) */
      readonly url: string | Redacted.Redacted
      readonly client?: undefined
    }
    | {
      /** a SQL client of your own, such as `PgClient.layer(...)` from `@effect/sql-pg` */
      readonly client: Layer.Layer<SqlClient, E, R>
      readonly url?: undefined
    }
  )

const missingPeers = (cause: unknown) =>
  new Error(
    "Sharded.layerPostgres needs the optional peer dependencies @effect/sql-pg and @effect/platform-node " +
      `(npm install @effect/sql-pg @effect/platform-node): ${cause instanceof Error ? cause.message : String(cause)}`
  )

/**
 * The common cluster: runners over sockets (`@effect/platform-node`'s
 * `NodeClusterSocket`), the engine's message and runner storage
 * (`SqlMessageStorage`, `SqlRunnerStorage`) in PostgreSQL (`@effect/sql-pg`).
 * Provide it to `runner` and `layer`. Its engine is wired for the dispatcher:
 * a runner keeps a lease on its shards from the engine's own lock refreshes
 * (see `runner`), and a volatile call reports each delivery attempt, so that
 * it gets `Unavailable` when it finds no runner (see `LayerOptions`) or when
 * its runner dies holding it (never a second run elsewhere). Its sockets send
 * the messages written while one batch of fibers runs in one system call, up
 * to 16 at a time (the same protocol and bytes as `NodeClusterSocket`'s: about
 * 40% less CPU a volatile call under load, README "Scale out"). The engine's own
 * layers remain usable for other transports and storage, without those three.
 *
 * Its modules, and the optional peers `@effect/sql-pg` and
 * `@effect/platform-node`, are loaded when the layer is built (a defect naming
 * them if they are not installed).
 *
 * @example
 * ```ts
 * import { Sharded } from "effect-dispatcher"
 *
 * // a runner: hosts children, reachable by the others
 * const RunnerCluster = Sharded.layerPostgres({
 *   url: "postgres://postgres@127.0.0.1:5432/app",
 *   runnerAddress: { host: "10.0.0.5", port: 34431 }
 * })
 *
 * // a process that only calls
 * const ClientCluster = Sharded.layerPostgres({ url: "postgres://postgres@127.0.0.1:5432/app", clientOnly: true })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPostgres = <E = never, R = never>(
  options: PostgresOptions<E, R>
): Layer.Layer<
  Sharding | ShardingConfig,
  DatabaseUnavailable | SettingsMismatch | SqlError | SocketServerError | E,
  R
> =>
  L.unwrap(
    Effect.tryPromise({
      try: () => import("./internal/sharded/postgres.js"),
      catch: missingPeers
    }).pipe(
      Effect.orDie,
      // first, while Effect's scope code is still cold: see pretenuring.ts
      Effect.tap(Effect.sync(settleScopePretenuring)),
      Effect.map((m) =>
        m.layer(
          options,
          (options.url !== undefined ? m.client(options.url) : options.client!) as Layer.Layer<SqlClient, SqlError | E, R>
        )
      )
    )
  ) as Layer.Layer<
    Sharding | ShardingConfig,
    DatabaseUnavailable | SettingsMismatch | SqlError | SocketServerError | E,
    R
  >

/**
 * The stable id of the request a runner is serving: the engine's id for the
 * message, the same on every delivery of a persisted request (after its
 * runner died, say), so a handler can make its effect idempotent with it.
 * `None` outside a runner; for a volatile entity's requests, which run at
 * most once and so have nothing to make idempotent (recording an id would
 * cost every request); and for requests that decode to a primitive (a
 * string, a number): give those a Struct.
 *
 * A persisted request is delivered at least once: a runner can die after the
 * handler's effect and before the answer was stored, and the key's next child
 * then gets the request again. Record the id with the effect, in one
 * transaction, and a second delivery changes nothing:
 *
 * @example
 * ```ts
 * import { Effect, Option, Schema } from "effect"
 * import { SqlClient } from "effect/sql/SqlClient"
 * import { Dispatcher, Sharded } from "effect-dispatcher"
 *
 * const Deposit = Schema.Struct({ account: Schema.String, amount: Schema.Number })
 * type Deposit = typeof Deposit.Type
 *
 * export const Deposits = Sharded.entity("Deposits", {
 *   request: Deposit,
 *   success: Schema.Number,
 *   keyOf: (deposit) => deposit.account,
 *   persisted: true
 * })
 *
 * // applied (request_id text primary key), balances (account text primary key, balance numeric)
 * const apply = (deposit: Deposit) =>
 *   Effect.gen(function*() {
 *     const sql = yield* SqlClient
 *     const id = Option.getOrElse(Sharded.requestId(deposit), () => crypto.randomUUID())
 *     return yield* sql.withTransaction(Effect.gen(function*() {
 *       const fresh = yield* sql`INSERT INTO applied VALUES (${id}) ON CONFLICT DO NOTHING RETURNING request_id`
 *       if (fresh.length > 0) {
 *         yield* sql`UPDATE balances SET balance = balance + ${deposit.amount} WHERE account = ${deposit.account}`
 *       }
 *       const rows = yield* sql<{ readonly balance: number }>`SELECT balance FROM balances WHERE account = ${deposit.account}`
 *       return rows[0]?.balance ?? 0
 *     }))
 *   }).pipe(Effect.orDie)
 *
 * export const deposits: Dispatcher.Factory<Deposit, number, never, SqlClient> = {
 *   keyOf: (deposit) => deposit.account,
 *   spawn: Dispatcher.serveWith(apply)
 * }
 * ```
 *
 * @since 0.1.0
 * @category requests
 */
export const requestId = (request: unknown): Option.Option<string> =>
  typeof request === "object" && request !== null ? O.map(O.fromUndefinedOr(requestIds.get(request)), String) : O.none()
