/**
 * Children that failed, told to whoever watches a dispatcher tree (the
 * inspector's "recent failures"). Nothing is kept and nothing is looked up
 * unless someone watches: a failing child costs one check of `watched.count`
 * more, and a request costs nothing.
 */
import type { Cause } from "effect"
import type { Core } from "./core.js"

/**
 * One child that ended by failure or defect.
 *
 * @internal
 */
export interface FailureRecord {
  /** Clock millis when it ended */
  readonly at: number
  /** the dispatcher it was a child of */
  readonly core: Core
  readonly key: string
  readonly incarnation: number
  readonly cause: Cause.Cause<unknown>
  /** no successor follows: its restart schedule gave up, or it died before taking a request */
  readonly gaveUp: boolean
}

/** @internal */
export type FailureSink = (record: FailureRecord) => void

const sinks = new WeakMap<Core, Set<FailureSink>>()

/**
 * How many sinks watch any dispatcher: 0 skips the report altogether.
 *
 * @internal
 */
export const watched = { count: 0 }

/**
 * Be told of every child that fails in `core` or in any dispatcher running
 * inside its children (a tree's lower levels). Returns how to stop.
 *
 * @internal
 */
export const watchFailures = (core: Core, sink: FailureSink): () => void => {
  let set = sinks.get(core)
  if (set === undefined) {
    set = new Set()
    sinks.set(core, set)
  }
  const own = set
  own.add(sink)
  watched.count++
  let stopped = false
  return () => {
    if (stopped) return
    stopped = true
    own.delete(sink)
    watched.count--
  }
}

/**
 * A child of `core` failed: tell the sinks of `core` and of every dispatcher
 * it runs inside. Called only while `watched.count` is not 0.
 *
 * @internal
 */
export const reportFailure = (record: FailureRecord): void => {
  for (let at: Core | undefined = record.core; at !== undefined; at = at.outer) {
    const set = sinks.get(at)
    if (set === undefined) continue
    for (const sink of set) {
      try {
        sink(record)
      } catch {
        // a sink never breaks the dispatcher
      }
    }
  }
}
