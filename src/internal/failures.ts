/**
 * Children that failed, told to whoever watches a dispatcher tree (the
 * inspector's "recent failures"). Nothing is kept unless someone watches: a
 * failing child costs a look up its dispatcher's chain, and a request costs
 * nothing.
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

/**
 * Be told of every child that fails in `core` or in any dispatcher running
 * inside its children (a tree's lower levels). The watchers live on the
 * dispatcher itself: no state outside it. Returns how to stop.
 *
 * @internal
 */
export const watchFailures = (core: Core, sink: FailureSink): () => void => {
  const own = (core.failureWatchers ??= new Set())
  own.add(sink)
  let stopped = false
  return () => {
    if (stopped) return
    stopped = true
    own.delete(sink)
    if (own.size === 0 && core.failureWatchers === own) core.failureWatchers = undefined
  }
}

/**
 * Whether anyone watches the failures of `core` (at its level or above): the
 * failure path asks this before it makes a record.
 *
 * @internal
 */
export const isWatched = (core: Core): boolean => {
  for (let at: Core | undefined = core; at !== undefined; at = at.outer) if (at.failureWatchers !== undefined) return true
  return false
}

/**
 * A child of `core` failed: tell the watchers of `core` and of every
 * dispatcher it runs inside.
 *
 * @internal
 */
export const reportFailure = (record: FailureRecord): void => {
  for (let at: Core | undefined = record.core; at !== undefined; at = at.outer) {
    const set = at.failureWatchers
    if (set === undefined) continue
    for (const sink of set) {
      try {
        sink(record)
      } catch {
        // a watcher never breaks the dispatcher
      }
    }
  }
}
