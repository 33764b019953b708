import { Context, Metric } from "effect"
import type { Counters } from "./core.js"

/**
 * The dispatcher's metrics. They are read, not pushed: each series reads the
 * counters the dispatchers keep anyway when it is snapshotted, so metrics cost
 * nothing on the request path.
 *
 * @internal
 */
export const requests = Metric.counter("dispatcher_requests_total", {
  description:
    "Requests by outcome: accepted; withdrawn by their caller; refused or answered by the dispatcher with an error",
  incremental: true
})

/** @internal */
export const spawns = Metric.counter("dispatcher_spawns_total", {
  description: "Children spawned, successors included",
  incremental: true
})

/** @internal */
export const successors = Metric.counter("dispatcher_successors_total", {
  description: "Children spawned to succeed one that ended with requests waiting",
  incremental: true
})

/** @internal */
export const failures = Metric.counter("dispatcher_failures_total", {
  description: "Children that ended by failure or defect",
  incremental: true
})

/** @internal */
export const liveChildren = Metric.gauge("dispatcher_live_children", {
  description: "Children alive now"
})

/** What a dispatcher exposes to its metrics: its counters and its live children. */
interface Source extends Readonly<Counters> {
  readonly live: number
}

type CounterField = keyof Counters

const outcomes: ReadonlyArray<readonly [string, CounterField]> = [
  ["accepted", "accepted"],
  ["withdrawn", "withdrawn"],
  ["too_many_requests", "tooManyRequests"],
  ["unavailable", "unavailable"],
  ["request_timeout", "requestTimeout"],
  ["child_failed", "childFailed"]
]

/**
 * All dispatchers of one name in one registry report as one series (every
 * `topics` dispatcher under every group adds up), including those that stopped.
 */
class Aggregate {
  readonly sources = new Set<Source>()
  readonly retired: Record<CounterField, number> = {
    accepted: 0,
    withdrawn: 0,
    spawned: 0,
    successors: 0,
    failures: 0,
    tooManyRequests: 0,
    unavailable: 0,
    requestTimeout: 0,
    childFailed: 0
  }

  sum(field: CounterField): number {
    let total = this.retired[field]
    for (const source of this.sources) total += source[field]
    return total
  }

  live(): number {
    let total = 0
    for (const source of this.sources) total += source.live
    return total
  }
}

// The aggregates belong to their registry: found through it, dropped with it.
const aggregates = new WeakMap<object, Map<string, Aggregate>>()

const counter = (read: () => number) => ({
  get: () => ({ count: read(), incremental: true }),
  update: () => {},
  modify: () => {}
})

const register = (context: Context.Context<never>, name: string): Aggregate => {
  const aggregate = new Aggregate()
  const dispatcher = { dispatcher: name }
  for (const [outcome, field] of outcomes) {
    Metric.registerUnsafe(
      Metric.withAttributes(requests, { ...dispatcher, outcome }),
      context,
      counter(() => aggregate.sum(field))
    )
  }
  for (const [metric, field] of [[spawns, "spawned"], [successors, "successors"], [failures, "failures"]] as const) {
    Metric.registerUnsafe(Metric.withAttributes(metric, dispatcher), context, counter(() => aggregate.sum(field)))
  }
  Metric.registerUnsafe(Metric.withAttributes(liveChildren, dispatcher), context, {
    get: () => ({ value: aggregate.live() }),
    update: () => {},
    modify: () => {}
  })
  return aggregate
}

/**
 * Count this dispatcher in its name's series, registering them on first use.
 * Returns what to call once it has stopped.
 *
 * @internal
 */
export const attach = (context: Context.Context<never>, name: string, source: Source): () => void => {
  const registry = Context.get(context, Metric.MetricRegistry)
  let byName = aggregates.get(registry)
  if (byName === undefined) {
    byName = new Map()
    aggregates.set(registry, byName)
  }
  let aggregate = byName.get(name)
  if (aggregate === undefined) {
    aggregate = register(context, name)
    byName.set(name, aggregate)
  }
  const owner = aggregate
  owner.sources.add(source)
  return () => {
    if (!owner.sources.delete(source)) return
    for (const field of Object.keys(owner.retired) as Array<CounterField>) owner.retired[field] += source[field]
  }
}
