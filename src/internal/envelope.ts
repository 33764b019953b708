import { Deferred, Effect, Exit } from "effect"
import { pipeArguments } from "effect/Pipeable"
import type * as Dispatcher from "../Dispatcher.js"
import type { DispatchError } from "../DispatchError.js"
import { brandAsDeferred } from "./effectInternals.js"

/**
 * What an envelope reports to when it is answered: the entry of the key it was
 * routed to (for restart resets and stats).
 *
 * @internal
 */
export interface Owner {
  /** A child answered a request of this key successfully: its restart backoff starts over. */
  readonly onSuccess: () => void
  /** The dispatcher answered a request of this key with an error: count it. */
  readonly onRejected: (reason: Rejection) => void
}

/** @internal */
export type Rejection = "unavailable" | "requestTimeout" | "childFailed" | "tooManyRequests"

/**
 * One request at one level of the tree. Every level's envelope for a request
 * shares the caller's `deferred`, so whoever answers first, at any depth, wins.
 * At the level that accepted it from its caller, the envelope is that Deferred
 * itself (one object per request, not two).
 *
 * @internal
 */
export class EnvelopeImpl<Req, Res, E> implements Dispatcher.Envelope<Req, Res, E> {
  readonly deferred: Deferred.Deferred<Res, E | DispatchError>
  // the Deferred's own state, used when the envelope is the caller's Deferred
  effect: Effect.Effect<Res, E | DispatchError> | undefined = undefined
  resumes: Array<(effect: Effect.Effect<Res, E | DispatchError>) => void> | undefined = undefined

  constructor(
    readonly key: string,
    readonly request: Req,
    // set again when a sender that waited for room is accepted
    public enqueuedAt: number,
    deferred: Deferred.Deferred<Res, E | DispatchError> | undefined,
    readonly owner: Owner,
    readonly seq: number,
    // +Infinity without a requestTimeout; set when the request is accepted
    public deadline: number
  ) {
    this.deferred = deferred ?? (this as unknown as Deferred.Deferred<Res, E | DispatchError>)
  }

  pipe() {
    return pipeArguments(this, arguments)
  }

  get reply(): (exit: Exit.Exit<Res, E>) => Effect.Effect<boolean> {
    return (exit) => Effect.sync(() => replyUnsafe(this, exit))
  }

  get succeed(): (value: Res) => Effect.Effect<boolean> {
    return (value) => Effect.sync(() => replyUnsafe(this, Exit.succeed(value)))
  }

  get fail(): (error: E) => Effect.Effect<boolean> {
    return (error) => Effect.sync(() => replyUnsafe(this, Exit.fail(error)))
  }

  toJSON(): unknown {
    return { _id: "Envelope", key: this.key, request: this.request, enqueuedAt: this.enqueuedAt }
  }
}

// an envelope is a Deferred too (see above)
brandAsDeferred(EnvelopeImpl.prototype)

/** @internal */
export const isAnswered = (envelope: EnvelopeImpl<any, any, any>): boolean => envelope.deferred.effect !== undefined

/**
 * A child's answer. The owner is told before the caller is resumed, because
 * completing the Deferred runs the waiting caller inside this very call.
 *
 * @internal
 */
export const replyUnsafe = <Res, E>(
  envelope: EnvelopeImpl<any, Res, E>,
  exit: Exit.Exit<Res, E>
): boolean => {
  if (envelope.deferred.effect !== undefined) return false
  if (exit._tag === "Success") envelope.owner.onSuccess()
  return Deferred.doneUnsafe(envelope.deferred, exit)
}

/**
 * The dispatcher's own answer: counted against the owner only when it wins.
 *
 * @internal
 */
export const rejectUnsafe = (
  envelope: EnvelopeImpl<any, any, any>,
  reason: Rejection,
  exit: Exit.Exit<never, DispatchError>
): boolean => {
  if (envelope.deferred.effect !== undefined) return false
  envelope.owner.onRejected(reason)
  return Deferred.doneUnsafe(envelope.deferred, exit)
}
