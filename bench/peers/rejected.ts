/**
 * How the Effect adapters turn "the mailbox was full" into `REJECTED` for
 * `tryCall`: one `Effect.catchCause` and a check of the error's tag. Not
 * `Effect.catchTag`: in Effect 4.1 its data-last form goes through `dual`
 * with a predicate (an `arguments` object and a spread per call), which cost
 * about a quarter of this project's whole rejection path in a profile, and
 * would be charged to every peer's rejection and accepted call alike.
 */
import { type Cause, Effect } from "effect"
import { REJECTED } from "../types.js"

const rejected = Effect.succeed(REJECTED)

export const rejectedOn = (tag: string) => {
  const handle = (cause: Cause.Cause<unknown>): Effect.Effect<number, unknown> => {
    const reason = cause.reasons[0]
    return cause.reasons.length === 1 && reason?._tag === "Fail" && (reason.error as { _tag?: unknown })?._tag === tag
      ? rejected
      : Effect.failCause(cause)
  }
  return <E>(effect: Effect.Effect<number, E>): Effect.Effect<number, unknown> => Effect.catchCause(effect, handle)
}
