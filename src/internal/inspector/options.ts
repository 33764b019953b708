/**
 * The inspector's options, validated with Schema where the layer is built: a
 * bad one fails the layer with `InvalidOptions` naming it and the value.
 */
import { Duration, Effect, Predicate, Schema, type SchemaIssue } from "effect"
import { InvalidOptions } from "../../DispatchError.js"
import { describeIssue, duration, durationOf, show } from "../options.js"

/**
 * The inspector's options in the form the machinery uses.
 *
 * @internal
 */
export interface ResolvedInspector {
  /** `/_inspect`; `""` when the inspector is mounted at the root */
  readonly prefix: string
  /** millis between two events */
  readonly interval: number
  readonly top: number
  /** millis; `undefined`: each level's `requestTimeout` */
  readonly stuckAfter: number | undefined
  readonly redact: ((key: string) => string) | undefined
  readonly authorize: ((request: any) => boolean | Effect.Effect<boolean>) | undefined
}

/** @internal */
export const defaultPrefix = "/_inspect"

/** @internal */
export const defaultInterval = 1_000

/** @internal */
export const defaultTop = 10

/** @internal */
export const maxTop = 100

const fn = (expected: string) =>
  Schema.declare((u: unknown): u is (...args: ReadonlyArray<any>) => any => Predicate.isFunction(u), { expected })

const InspectorSchema = Schema.Struct({
  prefix: Schema.optional(
    Schema.String.check(
      Schema.isPattern(/^\/[A-Za-z0-9._~\/-]*$/, { expected: "a path such as \"/_inspect\" (letters, digits, . _ ~ - and /)" })
    )
  ),
  interval: Schema.optional(duration("a duration of 10 millis or more (e.g. \"1 second\")", (ms) => ms >= 10 && Number.isFinite(ms))),
  top: Schema.optional(
    Schema.Number.check(
      Schema.makeFilter((n: number) => Number.isSafeInteger(n) && n >= 1 && n <= maxTop, {
        expected: `a number of keys from 1 to ${maxTop}`
      })
    )
  ),
  stuckAfter: Schema.optional(duration("a duration of zero or more (e.g. \"5 seconds\")", (ms) => ms >= 0)),
  redact: Schema.optional(fn("a function from a key to what is shown of it")),
  authorize: Schema.optional(fn("a function from the request to whether it may look"))
})

const decode = Schema.decodeUnknownExit(InspectorSchema, { onExcessProperty: "error", errors: "first" })

const millis = (input: unknown): number => Duration.toMillis(durationOf(input)!)

/**
 * Validate the inspector's options.
 *
 * @internal
 */
export const resolveInspector = (options: unknown): Effect.Effect<ResolvedInspector, InvalidOptions> =>
  Effect.suspend(() => {
    if (options !== undefined && !Predicate.isObject(options)) {
      return Effect.fail(new InvalidOptions({ message: `Inspector options: expected an object, got ${show(options)}` }))
    }
    const decoded = decode(options ?? {})
    if (decoded._tag === "Failure") {
      const reason = decoded.cause.reasons[0]
      const issue = reason?._tag === "Fail" ? (reason.error as { issue: SchemaIssue.Issue }).issue : undefined
      return Effect.fail(
        new InvalidOptions({
          message: issue === undefined
            ? `Inspector options: ${show(options)} are invalid`
            : describeIssue(issue, options, Object.keys(InspectorSchema.fields))
        })
      )
    }
    const o = decoded.value
    const prefix = (o.prefix ?? defaultPrefix).replace(/\/+$/, "")
    return Effect.succeed({
      prefix,
      interval: o.interval === undefined ? defaultInterval : millis(o.interval),
      top: o.top ?? defaultTop,
      stuckAfter: o.stuckAfter === undefined ? undefined : millis(o.stuckAfter),
      redact: o.redact,
      authorize: o.authorize
    })
  })
