/**
 * The errors of the sharded mode. `SchemaMismatch` lives in the core's error
 * module (`DispatchError.SchemaMismatch`), so the same service tag, typed
 * `Dispatcher.Dispatcher<Req, Res, E>`, fits `Dispatcher.layer` and
 * `Sharded.layer` alike; re-exported here for the machinery. The others are
 * those of starting a cluster member (`Sharded.layerPostgres`), re-exported by
 * `Sharded`. Pure Effect: loaded with the package, no cluster code.
 */
import { Schema } from "effect"

export { SchemaMismatch } from "../../DispatchError.js"

/**
 * `layerPostgres` could not reach its database as the process started: the
 * message names the server, the database and why (connection refused, no
 * such database, authentication failed, no answer within 10 seconds). The
 * layer fails at once, after one attempt: nothing retries in a loop; the
 * process's supervisor decides what next.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Sharded } from "effect-dispatcher"
 *
 * const cluster = Sharded.layerPostgres({ url: "postgres://postgres@db.internal:5432/app", clientOnly: true })
 *
 * const program = Layer.launch(cluster).pipe(
 *   // cannot reach PostgreSQL at db.internal:5432, database "app": connection refused (nothing listens there) (ECONNREFUSED)
 *   Effect.catchTag("DatabaseUnavailable", (e) => Effect.logError(e.message))
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class DatabaseUnavailable extends Schema.TaggedError<DatabaseUnavailable>()("DatabaseUnavailable", {
  /** the server, as the URL names it (`"unknown"` with a client of your own that never connected) */
  host: Schema.String,
  port: Schema.Number,
  database: Schema.String,
  /** why, in words: connection refused, no such database, authentication failed, no answer in time... */
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot reach PostgreSQL at ${this.host}:${this.port}, database "${this.database}": ${this.reason}`
  }
}

/** One engine setting that differs between this process and a live member of its cluster. */
export const SettingDifference = Schema.Struct({
  setting: Schema.String,
  here: Schema.String,
  there: Schema.String,
  /** the other member: `runner host:port` or `client pid@host` */
  member: Schema.String
})

/**
 * This process's engine settings differ from those of a live member of the
 * cluster it joins, so it was refused before taking part. Every process of
 * `layerPostgres` records the settings all members must share
 * (`shardsPerGroup`, `availableShardGroups`, `shardLockRefreshInterval`,
 * `shardLockExpiration`, `shardLockDisableAdvisory`) in the database as it
 * starts, and compares them with the live members'; `differences` names
 * each setting, both values and the member. With the raw engine, such a
 * process joins silently and misjudges the others (a client with a 3 s lock
 * expiry against runners on the defaults saw them dead most of the time).
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Sharded } from "effect-dispatcher"
 *
 * const cluster = Sharded.layerPostgres({
 *   url: "postgres://postgres@db.internal:5432/app",
 *   clientOnly: true,
 *   shardingConfig: { shardLockExpiration: "3 seconds" }
 * })
 *
 * const program = Layer.launch(cluster).pipe(
 *   Effect.catchTag("SettingsMismatch", (e) =>
 *     Effect.logError(e.differences.map((d) => `${d.setting}: ${d.here} here, ${d.there} at ${d.member}`).join("; ")))
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class SettingsMismatch extends Schema.TaggedError<SettingsMismatch>()("SettingsMismatch", {
  database: Schema.String,
  differences: Schema.Array(SettingDifference)
}) {
  override get message(): string {
    const shown = this.differences.slice(0, 3).map((d) => `${d.setting} is ${d.here} here, ${d.there} at ${d.member}`)
    const more = this.differences.length > 3 ? ` (and ${this.differences.length - 3} more)` : ""
    return `this process's cluster settings differ from the live members' on database "${this.database}": ${
      shown.join("; ")
    }${more}. Every process of a cluster must use the same ${compared.join(", ")}`
  }
}

/** The settings every process of a cluster must share. */
export const compared = [
  "shardsPerGroup",
  "availableShardGroups",
  "shardLockRefreshInterval",
  "shardLockExpiration",
  "shardLockDisableAdvisory"
] as const
