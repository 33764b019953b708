/**
 * The errors a dispatcher answers with. Each is a `Schema.TaggedError` that
 * carries the key it concerns, so a caller can tell which worker refused it.
 *
 * @module effect-dispatcher/DispatchError
 * @since 0.1.0
 */
import { Cause, Schema } from "effect"

/**
 * The child's mailbox held `capacity` requests, so this one was refused at
 * once and nothing was queued. With `maxChildren`, also the answer to a request
 * for a new key when every live child has work waiting (then `limit` is
 * `"maxChildren"` and `capacity` is the cap on children).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * declare const dispatcher: Dispatcher.Dispatcher<string, string>
 *
 * const program = Dispatcher.call(dispatcher, "job").pipe(
 *   Effect.catchTag("TooManyRequests", (e) =>
 *     Effect.succeed(`busy: ${e.key} holds ${e.capacity}`)
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class TooManyRequests extends Schema.TaggedError<TooManyRequests>()("TooManyRequests", {
  key: Schema.String,
  capacity: Schema.Number,
  /** what was full: the key's mailbox (default), or the cap on live children (`maxChildren`) */
  limit: Schema.optional(Schema.Literals(["mailbox", "maxChildren"]))
}) {
  override get message(): string {
    return this.limit === "maxChildren"
      ? `no room for a child for "${this.key}": ${this.capacity} children live (maxChildren) and each has work waiting`
      : `the mailbox of "${this.key}" is full (capacity ${this.capacity})`
  }
}

/**
 * The dispatcher is stopping or has stopped: the request was refused, or it
 * was accepted but left in a mailbox when the children ended.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * declare const dispatcher: Dispatcher.Dispatcher<string, string>
 *
 * const program = Dispatcher.call(dispatcher, "job").pipe(
 *   Effect.catchTag("Unavailable", (e) => Effect.succeed(`stopped before ${e.key} could serve it`))
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", {
  key: Schema.String
}) {
  override get message(): string {
    return `the dispatcher serving "${this.key}" is stopping or stopped`
  }
}

/**
 * The request's `requestTimeout` passed before it was answered. The caller is
 * answered at the deadline wherever the request was; a later reply is ignored.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * declare const dispatcher: Dispatcher.Dispatcher<string, string>
 *
 * const program = Dispatcher.call(dispatcher, "poll").pipe(
 *   Effect.catchTag("RequestTimeout", () => Effect.succeed("nothing yet"))
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class RequestTimeout extends Schema.TaggedError<RequestTimeout>()("RequestTimeout", {
  key: Schema.String
}) {
  override get message(): string {
    return `the request for "${this.key}" was not answered before its deadline`
  }
}

/** The first defect or error of a cause, in one line. */
const reasonOf = (cause: unknown): string | undefined => {
  const error = Cause.isCause(cause) ? Cause.squash(cause) : cause
  if (error === undefined) return undefined
  if (error instanceof Error) return `${error.name}: ${error.message}`.split("\n")[0]
  try {
    return typeof error === "string" ? error : JSON.stringify(error) ?? String(error)
  } catch {
    return String(error)
  }
}

/**
 * The child serving `key` failed and could not answer: either its restart
 * schedule gave up (every waiting request gets this, with the last cause), or
 * it ended by failure or defect holding a request it had taken.
 *
 * @example
 * ```ts
 * import { Cause, Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * declare const dispatcher: Dispatcher.Dispatcher<string, string>
 *
 * const program = Dispatcher.call(dispatcher, "job").pipe(
 *   Effect.catchTag("ChildFailed", (e) =>
 *     Effect.logError(`worker ${e.key} gave up`, e.cause as Cause.Cause<unknown>)
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class ChildFailed extends Schema.TaggedError<ChildFailed>()("ChildFailed", {
  key: Schema.String,
  cause: Schema.Unknown
}) {
  override get message(): string {
    const reason = reasonOf(this.cause)
    return `the child serving "${this.key}" failed${reason === undefined ? "" : `: ${reason}`}`
  }
}

/**
 * An option given to `make`, `layer`, `runChild` or `testChild` was invalid.
 * The message names the option and the value that was given.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * declare const factory: Dispatcher.Factory<string>
 *
 * const program = Dispatcher.make(factory, { mailboxCapacity: 0 }).pipe(
 *   Effect.catchTag("InvalidOptions", (e) => Effect.logError(e.message)),
 *   Effect.scoped
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidOptions extends Schema.TaggedError<InvalidOptions>()("InvalidOptions", {
  message: Schema.String
}) {}

/**
 * A request or its answer did not fit its Schema on its way between
 * processes. Only handles whose requests cross a process boundary answer with
 * it (a `Sharded.layer` handle): the request did not encode at the caller or
 * did not decode on the runner (a runner deployed with another request Schema,
 * say), or the answer (a value, or your own error) did not encode on the
 * runner or decode at the caller. An in-process dispatcher never answers with
 * it: requests and answers stay the values they are.
 *
 * - `side`: which way it was going: `"request"` (caller to runner) or
 *   `"answer"` (runner to caller, a value or your error).
 * - `what`: what did not fit, in the Schema's words.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * declare const ledger: Dispatcher.Dispatcher<{ readonly user: string }, number>
 *
 * const balance = Dispatcher.call(ledger, { user: "ada" }).pipe(
 *   Effect.catchTag("SchemaMismatch", (e) =>
 *     Effect.logError(`${e.side} of ${e.key} not understood: ${e.what}`).pipe(Effect.as(0))
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class SchemaMismatch extends Schema.TaggedError<SchemaMismatch>()("SchemaMismatch", {
  key: Schema.String,
  /** which way the value was going: the request (caller to runner) or the answer (runner to caller) */
  side: Schema.Literals(["request", "answer"]),
  /** what did not fit, in the Schema's words */
  what: Schema.String
}) {
  override get message(): string {
    return `the ${this.side} for "${this.key}" does not fit its Schema: ${this.what}`
  }
}

/**
 * Every error the dispatcher itself can answer a request with.
 *
 * @example
 * ```ts
 * import type { DispatchError } from "effect-dispatcher"
 *
 * const status = (e: DispatchError.DispatchError): number => {
 *   switch (e._tag) {
 *     case "TooManyRequests": return 429
 *     case "RequestTimeout": return 408
 *     case "Unavailable": return 503
 *     case "ChildFailed": return 500
 *     case "SchemaMismatch": return 502
 *   }
 * }
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export type DispatchError = TooManyRequests | Unavailable | RequestTimeout | ChildFailed | SchemaMismatch
