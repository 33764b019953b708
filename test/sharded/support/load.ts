/**
 * Steady load, as independent callers make it: every key is called on a fixed
 * schedule whether or not its earlier calls were answered (a caller that waits
 * for each answer before the next call would hide two children serving one
 * key at once). Every call's outcome is kept, with when it was sent and
 * answered.
 */
import { Cause, Effect, Exit, Fiber, Option, Schedule, Scope } from "effect"
import { Dispatcher } from "../../../src/index.js"
import { type Call, now, type Served } from "../tracked.js"

/** What one call got. */
export interface Outcome {
  readonly id: string
  readonly key: string
  readonly sentAt: number
  readonly doneAt: number
  /** "ok", the error's tag, "defect" or "interrupted" */
  readonly tag: string
  readonly served: Served | undefined
  readonly error: unknown
}

export interface Load {
  readonly outcomes: Array<Outcome>
  readonly inFlight: () => number
  /** calls sent so far */
  readonly sent: () => number
  /** one more call now, besides the schedule (its outcome is kept with the others) */
  readonly callNow: (key: string, ms: number) => Effect.Effect<void>
  /**
   * Stop calling, and wait for every call in flight to be answered (at most
   * `within`); the ids of the calls still unanswered then (they hung).
   */
  readonly stop: (within: number) => Effect.Effect<ReadonlyArray<string>>
}

const tagOf = (exit: Exit.Exit<unknown, unknown>): string => {
  if (exit._tag === "Success") return "ok"
  const error = Cause.findErrorOption(exit.cause)
  if (Option.isSome(error)) return String((error.value as { _tag?: unknown })?._tag ?? "error")
  return Cause.hasInterruptsOnly(exit.cause) ? "interrupted" : "defect"
}

/**
 * Call each key every `every` ms (keys staggered over the period), each call
 * asking the handler to work `ms` (or `msOf(key)`), until `stop`.
 */
export const load = (
  handle: Dispatcher.Dispatcher<Call, Served>,
  options: {
    readonly keys: ReadonlyArray<string>
    readonly every: number
    readonly ms?: number
    readonly msOf?: (key: string) => number
    readonly prefix?: string
  }
): Effect.Effect<Load, never, Scope.Scope> =>
  Effect.gen(function*() {
    const outcomes: Array<Outcome> = []
    const pending = new Map<string, Fiber.Fiber<void>>()
    let sent = 0
    const scope = yield* Effect.scope
    const callScope = yield* Scope.fork(scope)
    const callOnce = (key: string, extra?: number) =>
      Effect.suspend(() => {
        const id = `${options.prefix ?? "c"}${sent++}`
        const ms = extra ?? options.msOf?.(key) ?? options.ms ?? 0
        const sentAt = now()
        return Dispatcher.call(handle, { key, id, ms }).pipe(
          Effect.exit,
          Effect.flatMap((exit) =>
            Effect.sync(() => {
              outcomes.push({
                id,
                key,
                sentAt,
                doneAt: now(),
                tag: tagOf(exit),
                served: exit._tag === "Success" ? exit.value : undefined,
                error: exit._tag === "Failure"
                  ? Option.getOrElse(Cause.findErrorOption(exit.cause), () => Cause.pretty(exit.cause))
                  : undefined
              })
              pending.delete(id)
            })
          ),
          Effect.forkIn(callScope, { startImmediately: true }),
          Effect.tap((fiber) => Effect.sync(() => fiber.pollUnsafe() === undefined && pending.set(id, fiber)))
        )
      })
    const issuers = yield* Effect.forEach(options.keys, (key, i) =>
      Effect.sleep(Math.floor((i * options.every) / options.keys.length)).pipe(
        Effect.andThen(Effect.repeat(callOnce(key), Schedule.fixed(options.every))),
        Effect.forkIn(scope)
      ))
    const stop = (within: number) =>
      Effect.gen(function*() {
        yield* Fiber.interruptAll(issuers)
        const deadline = Date.now() + within
        while (pending.size > 0 && Date.now() < deadline) yield* Effect.sleep(100)
        return [...pending.keys()]
      })
    return {
      outcomes,
      inFlight: () => pending.size,
      sent: () => sent,
      callNow: (key, ms) => Effect.asVoid(callOnce(key, ms)),
      stop
    }
  })

/** Outcomes by tag: `{ ok: n, Unavailable: m, ... }`. */
export const byTag = (outcomes: ReadonlyArray<Outcome>): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const o of outcomes) out[o.tag] = (out[o.tag] ?? 0) + 1
  return out
}

/**
 * How long the keys that `runner` served before `at` took to answer again from
 * another runner: per key, from `at` to the first success from elsewhere that
 * was sent after `at` (undefined for a key that never did).
 */
export const failover = (
  outcomes: ReadonlyArray<Outcome>,
  runner: string,
  at: number
): { readonly keys: number; readonly moved: number; readonly max: number; readonly median: number } => {
  // the runner of each key's last answer before `at`
  const owner = new Map<string, string>()
  const before = outcomes.filter((o) => o.served !== undefined && o.doneAt < at).sort((a, b) => a.doneAt - b.doneAt)
  for (const o of before) owner.set(o.key, o.served!.runner)
  const keys = [...owner].filter(([, r]) => r === runner).map(([k]) => k)
  const times: Array<number> = []
  for (const key of keys) {
    let first = Infinity
    for (const o of outcomes) {
      if (o.key === key && o.served !== undefined && o.served.runner !== runner && o.sentAt >= at) {
        first = Math.min(first, o.doneAt - at)
      }
    }
    if (first !== Infinity) times.push(first)
  }
  times.sort((a, b) => a - b)
  return {
    keys: keys.length,
    moved: times.length,
    max: times.length === 0 ? NaN : times[times.length - 1]!,
    median: times.length === 0 ? NaN : times[Math.floor(times.length / 2)]!
  }
}

/** Print a figure the tests measure, as a `[measure]` line (the README's failover figures are read from them). */
export const measure = (what: string, figures: unknown) =>
  Effect.sync(() => console.log(`[measure] ${what}: ${JSON.stringify(figures)}`))
