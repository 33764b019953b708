/**
 * What the failover tests run: entities whose children record their lives and
 * every request they begin in the test's own database, so a test can check
 * from the outside, after the fact, that one key never had two live children
 * at once and that no request ran twice.
 *
 * - `lives`: one row per child, written as it starts (before it takes any
 *   request) and completed as it ends: its runner, its key, when it started
 *   and ended (the runner's clock: every process of a test runs on one
 *   machine, so their clocks agree), when it last began a request and last
 *   finished one, how many it served. A child of a runner killed with SIGKILL never writes its end: the
 *   test knows when it killed it.
 * - `runs`: one row per request a child begins (before the handler's work),
 *   with the caller's id for the call and `Sharded.requestId`.
 */
import { Effect, Option, Schema, Scope } from "effect"
import type { SqlClient } from "effect/sql/SqlClient"
import { Dispatcher, Sharded } from "../../src/index.js"

/** A call: its key, the caller's unique id for it, and how long the handler works. */
export const Call = Schema.Struct({
  key: Schema.String,
  id: Schema.String,
  ms: Schema.Number
})
export type Call = typeof Call.Type

/**
 * The same call as another version of the program would define it (a rolling
 * deploy): `ms` renamed `millis`. A runner with this Schema cannot decode the
 * callers' requests, and the other way round.
 */
export const CallV2 = Schema.Struct({
  key: Schema.String,
  id: Schema.String,
  millis: Schema.Number
})

export const Served = Schema.Struct({
  runner: Schema.String,
  /** the child that served it: `runner/key/n` */
  child: Schema.String,
  /** requests this child served before this one */
  served: Schema.Number,
  requestId: Schema.optional(Schema.String)
})
export type Served = typeof Served.Type

/** Volatile. */
export const Tracked = Sharded.entity("Tracked", {
  request: Call,
  success: Served,
  keyOf: (call) => call.key
})

/** Persisted. */
export const StoredTracked = Sharded.entity("StoredTracked", {
  request: Call,
  success: Served,
  keyOf: (call) => call.key,
  persisted: true
})

/** The tables, made by the test before any runner starts. */
export const schema = [
  `CREATE TABLE lives (
    child text PRIMARY KEY, key text NOT NULL, runner text NOT NULL,
    started_at double precision NOT NULL, ended_at double precision,
    last_begun_at double precision, last_done_at double precision, served integer
  )`,
  `CREATE TABLE runs (
    seq bigserial PRIMARY KEY, call text NOT NULL, key text NOT NULL, child text NOT NULL,
    runner text NOT NULL, request_id text, begun_at double precision NOT NULL
  )`
]

/** Milliseconds on the machine's clock, below the millisecond too. */
export const now = (): number => performance.timeOrigin + performance.now()

/**
 * The children of one runner process: each records its life and every request
 * it begins, sleeps `ms`, and answers who served it. The handler reads `ms`
 * through `msOf`, so the same factory serves `CallV2` (a rolling deploy).
 */
export const factory = <C extends { readonly key: string; readonly id: string }>(
  runner: string,
  /** where to record; none: the children record nothing (a test that stops the database itself) */
  sql: SqlClient | undefined,
  msOf: (call: C) => number
): Dispatcher.Factory<C, Served> => {
  const record = (statement: (sql: SqlClient) => Effect.Effect<unknown, unknown>) =>
    sql === undefined ? Effect.void : Effect.orDie(statement(sql))
  let incarnations = 0
  return {
    keyOf: (call) => call.key,
    spawn: (child) =>
      Effect.gen(function*() {
        const startedAt = now()
        const id = `${runner}/${child.key}/${++incarnations}`
        yield* record((sql) =>
          sql`INSERT INTO lives (child, key, runner, started_at) VALUES (${id}, ${child.key}, ${runner}, ${startedAt})`
        )
        let lastBegun: number | null = null
        let lastDone: number | null = null
        let served = 0
        yield* Effect.addFinalizer(() =>
          Effect.suspend(() =>
            record((sql) =>
              sql`UPDATE lives SET ended_at = ${now()}, last_begun_at = ${lastBegun}, last_done_at = ${lastDone},
                served = ${served} WHERE child = ${id}`
            )
          ).pipe(Effect.catchDefect(() => Effect.void))
        )
        yield* Dispatcher.serve(child, (call) =>
          Effect.gen(function*() {
            lastBegun = now()
            const requestId = Option.getOrUndefined(Sharded.requestId(call))
            const begun = lastBegun
            yield* record((sql) =>
              sql`INSERT INTO runs (call, key, child, runner, request_id, begun_at)
                VALUES (${call.id}, ${call.key}, ${id}, ${runner}, ${requestId ?? null}, ${begun})`
            )
            const ms = msOf(call)
            if (ms > 0) yield* Effect.sleep(ms)
            lastDone = now()
            const answer: Served = requestId === undefined
              ? { runner, child: id, served: served++ }
              : { runner, child: id, served: served++, requestId }
            return answer
          }))
      }) as Effect.Effect<void, never, Scope.Scope>
  }
}
