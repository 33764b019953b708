import { Cause, Clock, Duration, Effect, Exit, Option, Queue } from "effect"
import type * as Dispatcher from "../Dispatcher.js"
import { InvalidOptions } from "../DispatchError.js"
import { answersEverything, reject } from "./dispatcher.js"
import { type EnvelopeImpl, isAnswered, replyUnsafe } from "./envelope.js"

/**
 * A ready-made child body. It takes everything waiting at once and answers it
 * in order, one handler at a time: a busy child pays one wake-up per batch, not
 * per request.
 *
 * @internal
 */
export const serve = <Req, Res, E, R>(
  child: Dispatcher.ChildSpec<Req, Res, E>,
  handler: (request: Req, key: Dispatcher.Key) => Effect.Effect<Res, E, R>,
  options?: Dispatcher.ServeOptions
): Effect.Effect<void, never, R> => {
  const ttl = idleMillis(options)
  if (typeof ttl === "string") return Effect.die(new InvalidOptions({ message: ttl }))
  const mailbox = child.requests as Queue.Dequeue<EnvelopeImpl<Req, Res, E>, Cause.Done>
  const take: Effect.Effect<ReadonlyArray<EnvelopeImpl<Req, Res, E>> | undefined, never> = ttl === undefined
    ? Queue.takeAll(mailbox).pipe(Effect.catchCause(() => Effect.succeed(undefined)))
    : Effect.suspend(() =>
      mailbox.messages.length > 0
        ? Queue.takeAll(mailbox)
        // only an idle child pays for the timer
        : Queue.takeAll(mailbox).pipe(Effect.timeoutOption(ttl), Effect.map(Option.getOrUndefined))
    ).pipe(Effect.catchCause(() => Effect.succeed(undefined)))

  return Effect.suspend(() => {
    answersEverything(child)
    let batch: ReadonlyArray<EnvelopeImpl<Req, Res, E>> = []
    let index = 0
    return Effect.gen(function*() {
      for (;;) {
        const taken = yield* take
        if (taken === undefined) return
        batch = taken
        for (index = 0; index < batch.length; index++) {
          const envelope = batch[index]!
          if (isAnswered(envelope)) continue
          if (envelope.deadline !== Infinity) {
            const left = envelope.deadline - (yield* Clock.currentTimeMillis)
            if (left <= 0) {
              reject(envelope, "requestTimeout")
              continue
            }
            const exit = yield* Effect.exit(Effect.timeoutOption(handler(envelope.request, envelope.key), left))
            if (exit._tag === "Success" && Option.isNone(exit.value)) {
              reject(envelope, "requestTimeout")
            } else {
              answer(envelope, Exit.map(exit, (o) => (o as Option.Some<Res>).value))
            }
            continue
          }
          answer(envelope, yield* Effect.exit(handler(envelope.request, envelope.key)))
        }
        batch = []
      }
    }).pipe(
      // interrupted mid-batch: the request being handled and the rest taken are answered
      Effect.onInterrupt(() =>
        Effect.sync(() => {
          for (; index < batch.length; index++) unavailable(batch[index]!)
        })
      )
    )
  })
}

/** A handler that interrupted itself could not serve the request. */
const answer = <Res, E>(envelope: EnvelopeImpl<any, Res, E>, exit: Exit.Exit<Res, E>): void => {
  if (exit._tag === "Failure" && Cause.hasInterruptsOnly(exit.cause)) unavailable(envelope)
  else replyUnsafe(envelope, exit)
}

const unavailable = (envelope: EnvelopeImpl<any, any, any>): void => {
  reject(envelope, "unavailable")
}

const idleMillis = (options: Dispatcher.ServeOptions | undefined): number | undefined | string => {
  if (options?.idleTimeToLive === undefined) return undefined
  let millis: number | undefined
  try {
    millis = Option.match(Duration.fromInput(options.idleTimeToLive), {
      onNone: () => undefined,
      onSome: Duration.toMillis
    })
  } catch {
    millis = undefined
  }
  if (millis === undefined || !(millis > 0)) {
    return `idleTimeToLive: expected a positive duration (e.g. "15 seconds"), got ${
      typeof options.idleTimeToLive === "string" ? JSON.stringify(options.idleTimeToLive) : String(options.idleTimeToLive)
    }`
  }
  return Number.isFinite(millis) ? millis : undefined
}
