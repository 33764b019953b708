/**
 * What the failover tests check in the records the children left
 * (`tracked.ts`): one live child per key at every moment, and no request run
 * twice.
 */
import { Effect } from "effect"
import type { SqlClient } from "effect/sql/SqlClient"
import type { Runner } from "./cluster.js"

/** One child's life, as it recorded it. */
export interface Life {
  readonly child: string
  readonly key: string
  readonly runner: string
  readonly started_at: number
  readonly ended_at: number | null
  readonly last_begun_at: number | null
  readonly last_done_at: number | null
  readonly served: number | null
}

export const lives = (sql: SqlClient): Effect.Effect<ReadonlyArray<Life>> =>
  sql<Life>`SELECT child, key, runner, started_at, ended_at, last_begun_at, last_done_at, served FROM lives ORDER BY key, started_at`
    .pipe(Effect.orDie)

/** Two children of one key alive at once, and by how much. */
export interface Overlap {
  readonly key: string
  readonly first: Life
  readonly second: Life
  /** ms during which both were alive */
  readonly ms: number
  /** the first child's runner was frozen (SIGSTOP) when the second started */
  readonly frozen: boolean
}

/**
 * Every pair of children of one key whose lives overlap. A child that wrote no
 * end lived until its runner was killed (SIGKILL), else it still lives.
 */
export const overlaps = (
  all: ReadonlyArray<Life>,
  runners: ReadonlyMap<string, Runner>,
  at: number
): Array<Overlap> => {
  const endOf = (life: Life): number => {
    if (life.ended_at !== null) return life.ended_at
    const killed = runners.get(life.runner)?.killedAt
    return killed ?? at
  }
  const byKey = new Map<string, Array<Life>>()
  for (const life of all) {
    let list = byKey.get(life.key)
    if (list === undefined) byKey.set(life.key, list = [])
    list.push(life)
  }
  const out: Array<Overlap> = []
  for (const [key, list] of byKey) {
    const sorted = [...list].sort((a, b) => a.started_at - b.started_at)
    for (let i = 0; i < sorted.length; i++) {
      for (let j = i + 1; j < sorted.length; j++) {
        const first = sorted[i]!
        const second = sorted[j]!
        const ms = Math.min(endOf(first), endOf(second)) - second.started_at
        if (ms > 0) {
          const runner = runners.get(first.runner)
          const frozen = runner?.frozenAt !== undefined && runner.frozenAt <= second.started_at &&
            (runner.resumedAt === undefined || runner.resumedAt >= second.started_at)
          out.push({ key, first, second, ms, frozen })
        }
      }
    }
  }
  return out
}

/** Calls run more than once: by how many children, and with which request ids. */
export const runTwice = (
  sql: SqlClient
): Effect.Effect<ReadonlyArray<{ readonly call: string; readonly runs: number; readonly ids: string }>> =>
  sql<{ call: string; runs: number; ids: string }>`
    SELECT call, count(*)::int AS runs, string_agg(coalesce(request_id, '-'), ',') AS ids
    FROM runs GROUP BY call HAVING count(*) > 1`.pipe(Effect.orDie)

/** Every run, by call id. */
export const runsByCall = (
  sql: SqlClient
): Effect.Effect<ReadonlyMap<string, ReadonlyArray<{ readonly runner: string; readonly request_id: string | null; readonly begun_at: number }>>> =>
  Effect.map(
    sql<{ call: string; runner: string; request_id: string | null; begun_at: number }>`
      SELECT call, runner, request_id, begun_at FROM runs ORDER BY begun_at`.pipe(Effect.orDie),
    (rows) => {
      const out = new Map<string, Array<{ runner: string; request_id: string | null; begun_at: number }>>()
      for (const row of rows) {
        let list = out.get(row.call)
        if (list === undefined) out.set(row.call, list = [])
        list.push(row)
      }
      return out
    }
  )

/** An overlap in words, for assertion messages. */
export const showOverlap = (o: Overlap): string =>
  `${o.key}: ${o.first.child} [${o.first.started_at.toFixed(0)}, ${o.first.ended_at?.toFixed(0) ?? "-"}] and ${o.second.child} [${
    o.second.started_at.toFixed(0)
  }, ${o.second.ended_at?.toFixed(0) ?? "-"}] overlap ${o.ms.toFixed(0)} ms${o.frozen ? " (the first was frozen)" : ""}`
