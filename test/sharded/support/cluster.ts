/**
 * A cluster for the failover tests: a fresh database with the tracking tables
 * (`tracked.ts`), runner processes (`tracked-runner.ts`) started and signalled
 * at will, and what the test needs to check afterwards: when each runner was
 * killed, frozen and resumed. Every process is killed with the Scope (see
 * `processes.ts`), pass or fail.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Redacted, type Scope } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import type { SqlClient } from "effect/sql/SqlClient"
import { now, schema } from "../tracked.js"
import { type Database, database, freePort } from "./postgres.js"
import { type Proc, script, spawn } from "./processes.js"

/** A runner process, and what was done to it (machine clock millis). */
export interface Runner extends Proc {
  readonly port: number
  killedAt: number | undefined
  frozenAt: number | undefined
  resumedAt: number | undefined
  termAt: number | undefined
  readonly kill: () => void
  readonly term: () => void
  readonly freeze: () => void
  readonly resume: () => void
}

export interface StartOptions {
  /** engine timings over the fixture's (another process's settings) */
  readonly timings?: Record<string, unknown>
  /** the request Schema of a later version (a rolling deploy) */
  readonly schema?: "v2"
  readonly requestTimeout?: string
  /** another database URL for the cluster (a proxy in front of the server, say); the records go straight */
  readonly url?: string
  readonly readyWithin?: number
  /** false: its children record nothing (a test that stops the database itself) */
  readonly record?: boolean
}

export interface Harness {
  readonly db: Database
  /** the test's own client on the database */
  readonly sql: SqlClient
  readonly runners: Map<string, Runner>
  readonly start: (name: string, options?: StartOptions) => Effect.Effect<Runner, Error, Scope.Scope>
}

/** A fresh database with the tracking tables (on `on`, else the server found), and a way to start runners on it. */
export const harnessOn = (on?: Database): Effect.Effect<Harness, never, Scope.Scope> => Effect.gen(function*() {
  const db = on ?? (yield* database)
  const sql = yield* PgClient.make({ url: Redacted.make(db.url), maxConnections: 4 }).pipe(
    Effect.provide(Reactivity.layer),
    Effect.orDie
  )
  for (const statement of schema) yield* sql.unsafe(statement).pipe(Effect.orDie)
  const runners = new Map<string, Runner>()
  const start = (name: string, options: StartOptions = {}) =>
    Effect.gen(function*() {
      const port = yield* freePort
      const env: Record<string, string> = {
        DATABASE_URL: options.url ?? db.url,
        // the children record straight to the database, whatever happens to the cluster's connections
        RECORD_URL: db.url,
        RUNNER_NAME: name,
        RUNNER_PORT: String(port)
      }
      if (options.timings !== undefined) env["TIMINGS"] = JSON.stringify(options.timings)
      if (options.schema !== undefined) env["CALL_SCHEMA"] = options.schema
      if (options.requestTimeout !== undefined) env["REQUEST_TIMEOUT"] = options.requestTimeout
      if (options.record === false) env["RECORD"] = "0"
      const proc = yield* spawn({
        name,
        script: script("tracked-runner.ts"),
        env,
        readyWithin: options.readyWithin ?? 60_000
      })
      const runner: Runner = {
        ...proc,
        port,
        killedAt: undefined,
        frozenAt: undefined,
        resumedAt: undefined,
        termAt: undefined,
        kill: () => {
          runner.killedAt = now()
          proc.signal("SIGKILL")
        },
        term: () => {
          runner.termAt = now()
          proc.signal("SIGTERM")
        },
        freeze: () => {
          runner.frozenAt = now()
          proc.signal("SIGSTOP")
        },
        resume: () => {
          runner.resumedAt = now()
          proc.signal("SIGCONT")
        }
      }
      runners.set(name, runner)
      return runner
    })
  return { db, sql, runners, start }
})

/** A fresh database with the tracking tables, and a way to start runners on it. */
export const harness: Effect.Effect<Harness, never, Scope.Scope> = harnessOn()
