/**
 * What `Sharded.layerPostgres` checks as a process joins its cluster, before
 * the engine starts:
 *
 * - **The database answers**: one query, bounded in time. If it does not, the
 *   layer fails at once with `DatabaseUnavailable`, naming the server, the
 *   database and why (the engine would otherwise die deep in its storage with
 *   `PgConnection: Failed to connect`, naming neither). Nothing retries: a
 *   process that cannot start says so and stops; its supervisor decides.
 * - **The settings agree**: every member records the engine settings that
 *   all must share (`compared`) in a table of the database, refreshed while
 *   it lives and removed when it stops; a process whose settings differ from
 *   a live member's is refused with `SettingsMismatch`, naming the settings,
 *   both values and the member (measured with the raw engine: a client with a
 *   3 s lock expiry against runners on the defaults saw them dead most of the
 *   time, with nothing reported).
 *
 * Loaded with `postgres.ts` only.
 */
import { Cause, Clock, Duration, Effect, type Exit, Option, Redacted, Schedule, type Scope } from "effect"
import type { ShardingConfig } from "effect/cluster/ShardingConfig"
import { SqlClient } from "effect/sql/SqlClient"
import { compared, DatabaseUnavailable, SettingsMismatch } from "./errors.js"

/** Where a URL points. */
export interface Target {
  readonly host: string
  readonly port: number
  readonly database: string
}

/** The server and database of a PostgreSQL URL (PostgreSQL's defaults where it names none). */
export const targetOf = (url: string | Redacted.Redacted): Target | undefined => {
  try {
    const parsed = new URL(Redacted.isRedacted(url) ? Redacted.value(url) : url)
    const user = decodeURIComponent(parsed.username) || "postgres"
    return {
      host: parsed.hostname || "localhost",
      port: parsed.port === "" ? 5432 : Number(parsed.port),
      database: decodeURIComponent(parsed.pathname.replace(/^\//, "")) || user
    }
  } catch {
    return undefined
  }
}

/** The codes of the failures a start meets most, in words. */
const codes: Record<string, string> = {
  ECONNREFUSED: "connection refused (nothing listens there)",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host name lookup failed",
  ETIMEDOUT: "connection timed out",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ECONNRESET: "connection reset",
  "3D000": "the database does not exist",
  "28P01": "authentication failed (password)",
  "28000": "authentication failed (no such role, or not allowed by pg_hba.conf)",
  "57P03": "the server is starting up or shutting down",
  "53300": "too many connections"
}

/** The first `code` and `message` along an error's chain of `reason`s and `cause`s. */
const walk = (error: unknown): { code: string | undefined; messages: Array<string> } => {
  let code: string | undefined
  const messages: Array<string> = []
  let at: unknown = error
  for (let i = 0; i < 8 && typeof at === "object" && at !== null; i++) {
    const e = at as { code?: unknown; message?: unknown; reason?: unknown; cause?: unknown }
    if (code === undefined && typeof e.code === "string") code = e.code
    if (typeof e.message === "string" && e.message !== "" && !messages.includes(e.message)) messages.push(e.message)
    at = e.reason ?? e.cause
  }
  return { code, messages }
}

/** Why a connection failed, in words. */
export const reasonOf = (error: unknown): string => {
  const { code, messages } = walk(error)
  const known = code === undefined ? undefined : codes[code]
  if (known !== undefined) return `${known} (${code})`
  const said = messages.filter((m) => !m.startsWith("PgConnection: Failed to connect")).join(": ")
  return said !== "" ? said : messages[0] ?? String(error)
}

/**
 * One query, within `within`: the database answers, or the start fails with
 * `DatabaseUnavailable`. With a client of the caller's own (no URL), the
 * server and database are read from the connection, or from the error.
 */
export const reach = (
  target: Target | undefined,
  within: Duration.Duration
): Effect.Effect<Target, DatabaseUnavailable, SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient
    const exit = yield* sql<{ readonly db: string; readonly port: number | null; readonly host: string | null }>`
      SELECT current_database() AS db, inet_server_port() AS port, host(inet_server_addr()) AS host`.pipe(
      Effect.timeoutOption(within),
      Effect.exit
    )
    const unavailable = (reason: string) => {
      const { host, port } = target ?? addressIn(exit)
      return new DatabaseUnavailable({ host, port, database: target?.database ?? "unknown", reason })
    }
    if (exit._tag === "Failure") {
      const error = Cause.findErrorOption(exit.cause)
      return yield* unavailable(reasonOf(Option.isSome(error) ? error.value : Cause.squash(exit.cause)))
    }
    if (Option.isNone(exit.value)) {
      return yield* unavailable(`no answer within ${Duration.format(within)}`)
    }
    const row = exit.value.value[0]
    return target ?? { host: row?.host ?? "unknown", port: row?.port ?? 5432, database: row?.db ?? "unknown" }
  })

/** The address a failed connection named (`ECONNREFUSED 127.0.0.1:5432`), if any. */
const addressIn = (exit: Exit.Exit<unknown, unknown>): { host: string; port: number } => {
  let at: unknown = exit._tag === "Failure" ? Cause.squash(exit.cause) : undefined
  for (let i = 0; i < 8 && typeof at === "object" && at !== null; i++) {
    const e = at as { address?: unknown; port?: unknown; reason?: unknown; cause?: unknown }
    if (typeof e.address === "string" && typeof e.port === "number") return { host: e.address, port: e.port }
    at = e.reason ?? e.cause
  }
  return { host: "unknown", port: 5432 }
}

const table = "effect_dispatcher_members"

const millis = (input: Duration.Input): number => Duration.toMillis(Duration.fromInputUnsafe(input))

/** The settings all members must share, as they are compared and shown. */
const sharedOf = (config: ShardingConfig["Service"]): Record<(typeof compared)[number], string> => ({
  shardsPerGroup: String(config.shardsPerGroup),
  availableShardGroups: JSON.stringify([...config.availableShardGroups].sort()),
  shardLockRefreshInterval: Duration.format(Duration.fromInputUnsafe(config.shardLockRefreshInterval)),
  shardLockExpiration: Duration.format(Duration.fromInputUnsafe(config.shardLockExpiration)),
  shardLockDisableAdvisory: String(config.shardLockDisableAdvisory)
})

/**
 * Record this process's shared settings, refuse to start if a live member's
 * differ, and keep the record fresh while the Scope lasts (removed at its
 * end). A member is live while its record was refreshed within its own
 * `shardLockExpiration`; it refreshes every `shardLockRefreshInterval`.
 */
export const checkSettings = (
  config: ShardingConfig["Service"],
  member: string,
  database: string
) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient
    const id = `${member}#${(yield* Clock.currentTimeMillis).toString(36)}${Math.random().toString(36).slice(2, 8)}`
    const shared = sharedOf(config)
    const expires = millis(config.shardLockExpiration)
    const every = millis(config.shardLockRefreshInterval)
    // concurrent creations of one table can collide in the catalog: try again
    yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${table} (
      id text PRIMARY KEY, member text NOT NULL, settings jsonb NOT NULL,
      expires_ms double precision NOT NULL, seen_at timestamptz NOT NULL DEFAULT now()
    )`).pipe(Effect.retry({ times: 3, schedule: Schedule.spaced("50 millis") }))
    yield* Effect.acquireRelease(
      sql`INSERT INTO ${sql(table)} (id, member, settings, expires_ms) VALUES (${id}, ${member}, ${
        JSON.stringify(shared)
      }::jsonb, ${expires})`,
      () => sql`DELETE FROM ${sql(table)} WHERE id = ${id}`.pipe(Effect.timeout("5 seconds"), Effect.ignore)
    )
    const others = yield* sql<{ readonly member: string; readonly settings: unknown }>`
      SELECT member, settings FROM ${sql(table)}
      WHERE id <> ${id} AND seen_at > now() - make_interval(secs => expires_ms / 1000)
      ORDER BY seen_at DESC`
    const differences: Array<{ setting: string; here: string; there: string; member: string }> = []
    for (const other of others) {
      const theirs = (typeof other.settings === "string" ? JSON.parse(other.settings) : other.settings) as Record<
        string,
        string
      >
      for (const setting of compared) {
        if (theirs[setting] !== undefined && theirs[setting] !== shared[setting]) {
          differences.push({ setting, here: shared[setting], there: theirs[setting], member: other.member })
        }
      }
    }
    if (differences.length > 0) return yield* new SettingsMismatch({ database, differences })
    // alive: refreshed while the Scope lasts (a refresh that fails, with the database away, is tried again later)
    yield* sql`UPDATE ${sql(table)} SET seen_at = now() WHERE id = ${id}`.pipe(
      Effect.ignore,
      Effect.delay(every),
      Effect.forever,
      Effect.forkScoped
    )
  }) satisfies Effect.Effect<void, unknown, SqlClient | Scope.Scope>
