import { Duration, Effect, Exit, Option, Predicate, Schedule, Schema, SchemaIssue } from "effect"
import type * as Dispatcher from "../Dispatcher.js"
import { InvalidOptions } from "../DispatchError.js"

/**
 * Options after validation, in the form the machinery uses: durations in
 * millis, `undefined` for "off".
 *
 * @internal
 */
export interface Resolved {
  readonly capacity: number
  readonly name: string
  /** millis to wait for room; `undefined` rejects at once */
  readonly overflowWait: number | undefined
  /** millis from acceptance; `undefined` means no deadline */
  readonly requestTimeout: number | undefined
  readonly restart: Schedule.Schedule<unknown, unknown>
  /** `Infinity` when uncapped */
  readonly maxChildren: number
  /** millis a stop waits for children to end by themselves; `undefined` waits as long as it takes */
  readonly shutdownTimeout: number | undefined
  /** the user's fence: `false` answers a request `Unavailable` before a child is given it */
  readonly fence: ((key: string) => boolean) | undefined
}

/**
 * Marks a `spawn` made by `serveWith` with options that were wrong: the
 * message, for `make`, `layer` and `runChild` to fail with.
 *
 * @internal
 */
export const invalidSpawn = "~effect-dispatcher/InvalidSpawn"

/** @internal */
export const defaultCapacity = 64

/** @internal */
export const defaultName = "dispatcher"

/**
 * Exponential from 10 ms, capped at 1 s; the tenth consecutive failure gives up.
 *
 * @internal
 */
export const defaultRestart: Schedule.Schedule<unknown, unknown> = Schedule.exponential("10 millis").pipe(
  Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.seconds(1)))),
  Schedule.upTo({ times: 9 })
)

/** @internal */
export const show = (u: unknown): string => {
  if (typeof u === "string") return JSON.stringify(u)
  if (typeof u === "number" || typeof u === "bigint" || typeof u === "boolean" || u == null) return String(u)
  if (Duration.isDuration(u)) return Duration.format(u)
  try {
    return JSON.stringify(u) ?? String(u)
  } catch {
    return String(u)
  }
}

/** @internal */
export const positiveInt = (what: string) =>
  Schema.Number.check(
    Schema.makeFilter((n: number) => Number.isSafeInteger(n) && n > 0, { expected: `${what} (a positive integer)` })
  )

/** @internal */
export const durationOf = (u: unknown): Duration.Duration | undefined => {
  // Duration reads NaN millis as zero: not a duration anyone meant
  if (typeof u === "number" && Number.isNaN(u)) return undefined
  // Duration.fromInput throws on some malformed inputs (a negative tuple, say): treat those as invalid
  try {
    return Option.getOrUndefined(Duration.fromInput(u as Duration.Input))
  } catch {
    return undefined
  }
}

/** @internal */
export const duration = (expected: string, valid: (millis: number) => boolean) =>
  Schema.declare(
    (u: unknown): u is Duration.Input => {
      const d = durationOf(u)
      return d !== undefined && valid(Duration.toMillis(d))
    },
    { expected }
  )

const OptionsSchema = Schema.Struct({
  mailboxCapacity: Schema.optional(positiveInt("a mailbox capacity")),
  name: Schema.optional(
    Schema.String.check(Schema.makeFilter((s: string) => s.length > 0, { expected: "a non-empty name" }))
  ),
  overflow: Schema.optional(
    Schema.Union([
      Schema.Literal("reject"),
      Schema.Struct({
        wait: duration("a duration of zero or more (e.g. \"100 millis\")", (ms) => ms >= 0)
      })
    ])
  ),
  requestTimeout: Schema.optional(duration("a positive duration (e.g. \"3 seconds\")", (ms) => ms > 0)),
  restart: Schema.optional(
    Schema.declare((u: unknown): u is Schedule.Schedule<unknown, unknown> => Schedule.isSchedule(u), {
      expected: "a Schedule"
    })
  ),
  maxChildren: Schema.optional(positiveInt("a cap on children")),
  shutdownTimeout: Schema.optional(duration("a duration of zero or more (e.g. \"30 seconds\")", (ms) => ms >= 0)),
  fence: Schema.optional(
    Schema.declare((u: unknown): u is (key: string) => boolean => typeof u === "function", {
      expected: "a function of the key"
    })
  )
})

const decodeOptions = Schema.decodeUnknownExit(OptionsSchema, { onExcessProperty: "error", errors: "first" })

const formatIssue = SchemaIssue.makeFormatterDefault()

const knownOptions = Object.keys(OptionsSchema.fields)

const pathOf = (issue: SchemaIssue.Issue): { readonly path: ReadonlyArray<PropertyKey>; readonly leaf: SchemaIssue.Issue } => {
  const path: Array<PropertyKey> = []
  let leaf = issue
  let current: SchemaIssue.Issue | undefined = issue
  while (current !== undefined) {
    leaf = current
    switch (current._tag) {
      case "Pointer":
        path.push(...current.path)
        current = current.issue
        break
      case "Composite":
      case "AnyOf":
        current = current.issues[0]
        break
      case "Filter":
      case "Encoding":
        current = current.issue
        break
      default:
        current = undefined
    }
  }
  return { path, leaf }
}

const at = (input: unknown, path: ReadonlyArray<PropertyKey>): unknown =>
  path.reduce<unknown>((u, k) => (Predicate.isObject(u) ? (u as Record<PropertyKey, unknown>)[k] : undefined), input)

/**
 * The first problem in words, naming the option and the value given:
 * `mailboxCapacity: expected a mailbox capacity (a positive integer), got 0`.
 *
 * @internal
 */
export const describeIssue = (
  issue: SchemaIssue.Issue,
  input: unknown,
  known: ReadonlyArray<string> = knownOptions
): string => {
  const { leaf, path } = pathOf(issue)
  const where = path.length === 0 ? "options" : path.map(String).join(".")
  if (leaf._tag === "UnexpectedKey") {
    return `${where}: unknown option (known: ${known.join(", ")})`
  }
  const expected = formatIssue(issue).split("\n")[0]!.replace(/^Expected /, "expected ").replace(
    / \| undefined$/,
    ""
  )
  return `${where}: ${expected}, got ${show(at(input, path))}`
}

/**
 * Validate user options; a bad one fails `InvalidOptions` naming the option and value.
 *
 * @internal
 */
export const resolve = (
  options: Dispatcher.Options | undefined,
  factory?: Dispatcher.Factory<any, any, any, any>
): Exit.Exit<Resolved, InvalidOptions> => {
  if (factory !== undefined) {
    const problem = !Predicate.isObject(factory)
      ? `factory: expected an object with keyOf and spawn, got ${show(factory)}`
      : typeof factory.keyOf !== "function"
      ? `factory.keyOf: expected a function, got ${show(factory.keyOf)}`
      : typeof factory.spawn !== "function"
      ? `factory.spawn: expected a function, got ${show(factory.spawn)}`
      : typeof (factory.spawn as unknown as Record<string, unknown>)[invalidSpawn] === "string"
      ? `factory.spawn (serveWith): ${(factory.spawn as unknown as Record<string, string>)[invalidSpawn]}`
      : undefined
    if (problem !== undefined) return Exit.fail(new InvalidOptions({ message: problem }))
  }
  if (options !== undefined && !Predicate.isObject(options)) {
    return Exit.fail(new InvalidOptions({ message: `options: expected an object, got ${show(options)}` }))
  }
  const decoded = decodeOptions(options ?? {})
  if (decoded._tag === "Failure") {
    const error = decoded.cause.reasons[0]
    const issue = error && error._tag === "Fail" ? (error.error as { issue: SchemaIssue.Issue }).issue : undefined
    return Exit.fail(
      new InvalidOptions({ message: issue ? describeIssue(issue, options) : `options: ${show(options)} are invalid` })
    )
  }
  const o = decoded.value
  const overflow = o.overflow
  const timeout = o.requestTimeout === undefined ? undefined : Duration.toMillis(durationOf(o.requestTimeout)!)
  const grace = o.shutdownTimeout === undefined ? undefined : Duration.toMillis(durationOf(o.shutdownTimeout)!)
  return Exit.succeed({
    capacity: o.mailboxCapacity ?? defaultCapacity,
    name: o.name ?? defaultName,
    overflowWait: overflow === undefined || overflow === "reject" ? undefined : Duration.toMillis(durationOf(overflow.wait)!),
    requestTimeout: timeout === undefined || !Number.isFinite(timeout) ? undefined : timeout,
    restart: o.restart ?? defaultRestart,
    maxChildren: o.maxChildren ?? Infinity,
    shutdownTimeout: grace === undefined || !Number.isFinite(grace) ? undefined : grace,
    fence: o.fence
  })
}
