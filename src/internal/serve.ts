import { Cause, type Clock, type Deferred, Duration, Effect, Exit, Fiber, Option, Queue } from "effect"
import type * as Dispatcher from "../Dispatcher.js"
import { InvalidOptions } from "../DispatchError.js"
import type { DispatchError } from "../DispatchError.js"
import { idleTimersOf } from "./core.js"
import { reject } from "./dispatcher.js"
import { answersEverything, type Entry, entryOf, type Holder, holds, type TakenDirect } from "./entry.js"
import { type EnvelopeImpl, isAnswered, rejectUnsafe, replyUnsafe } from "./envelope.js"
import type { IdleTimers } from "./idleTimers.js"
import { Waiting } from "./waiting.js"

/**
 * A ready-made child body. It takes everything waiting at once and answers it
 * in order, one handler at a time, so a busy child pays one wake-up per batch,
 * not per request. It is a small state machine rather than a generator: an
 * idle child holds only this object and the take it waits on.
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
  const onStop = options?.onStop ?? "drain"
  if (onStop !== "drain" && onStop !== "interrupt") {
    return Effect.die(new InvalidOptions({ message: `onStop: expected "drain" or "interrupt", got ${JSON.stringify(onStop)}` }))
  }
  return Effect.suspend(() => {
    answersEverything(child)
    const entry = entryOf(child)
    const core = entry?.core
    const timers = ttl !== undefined && core !== undefined ? idleTimersOf(core) : undefined
    const server = new Server(
      child.requests as any,
      handler,
      timers,
      core?.clock,
      ttl,
      onStop === "interrupt",
      entry !== undefined
    )
    // a dispatcher's child: if it ends mid-batch, its disposal answers what it held
    if (entry !== undefined && holds(entry, server)) return server.loop
    return Effect.onInterrupt(server.loop, () => Effect.sync(() => server.abandon(undefined)))
  })
}

type Envelope = EnvelopeImpl<any, any, any>
const noBatch: ReadonlyArray<Envelope> = []

/**
 * One `serve` child: its batch, and its own way of waiting (see `Waiting`).
 */
class Server<Req, Res, E, R> extends Waiting implements Holder {
  batch = noBatch
  index = 0
  /** the handler's effect for `batch[index]`, made already by `takeDirect` */
  private handled: Effect.Effect<Res, E, R> | undefined = undefined
  private onTimedAnswer: ((exit: Exit.Exit<Res, E>) => Effect.Effect<void, never, R>) | undefined = undefined
  readonly loop: Effect.Effect<void, never, R>
  private readonly takeNow: Effect.Effect<void, never, R>
  private readonly onAnswer: (exit: Exit.Exit<Res, E>) => Effect.Effect<void, never, R>

  constructor(
    mailbox: Queue.Dequeue<Envelope, Cause.Done>,
    readonly handler: (request: Req, key: Dispatcher.Key) => Effect.Effect<Res, E, R>,
    timers: IdleTimers | undefined,
    clock: Clock.Clock | undefined,
    ttl: number | undefined,
    readonly interruptOnStop: boolean,
    wokenByDispatcher: boolean
  ) {
    super(mailbox, timers, clock, ttl, wokenByDispatcher)
    // closures made here, not as class fields: a field arrow gets its name set at run time, costing memory per child
    this.onAnswer = (exit) => {
      answer(this.batch[this.index++]!, exit)
      return this.step()
    }
    // Queue.clear takes everything waiting in one step, and never fails
    this.takeNow = Effect.flatMap(Queue.clear(mailbox), (batch) => {
      this.batch = batch
      this.index = 0
      return this.step()
    })
    const wait = ttl !== undefined && timers === undefined
      // outside a dispatcher there is no timer heap: race a timer
      ? Effect.map(Effect.timeoutOption(this.wait, ttl), Option.getOrElse(() => false))
      : this.wait
    // woken with `false`: the idle time passed, and the child ends (unless a request was taken meanwhile)
    this.loop = Effect.flatMap(wait, (mail) => (mail || this.index < this.batch.length ? this.step() : Effect.void))
  }

  /** The next request of the batch, the next batch, or a wait for one. */
  step(): Effect.Effect<void, never, R> {
    const batch = this.batch
    while (this.index < batch.length) {
      const envelope = batch[this.index]!
      // made already by takeDirect, for this request only
      const made = this.handled
      this.handled = undefined
      if (isAnswered(envelope)) {
        this.index++
        continue
      }
      const timed = envelope.deadline !== Infinity
      if (timed && envelope.deadline <= (envelope.owner as Entry).core.clock.currentTimeMillisUnsafe()) {
        reject(envelope, "requestTimeout")
        this.index++
        continue
      }
      const handled = made ?? this.handle(envelope)
      if (Exit.isExit(handled)) {
        // already done (`Effect.succeed`, `Effect.fail`...): answered without running it
        this.index++
        answer(envelope, handled)
        continue
      }
      if (timed) {
        // a request with a deadline: its handler is interrupted once the request is answered
        // otherwise (the deadline passed, or its caller withdrew it)
        return Effect.flatMap(
          whileUnanswered(handled, envelope.deferred),
          this.onTimedAnswer ??= (exit) => {
            const envelope = this.batch[this.index++]!
            if (!isAnswered(envelope)) answer(envelope, exit)
            return this.step()
          }
        )
      }
      return Effect.flatMap(Effect.exit(handled), this.onAnswer)
    }
    this.batch = noBatch
    this.index = 0
    if (this.mailbox.messages.length > 0) return this.takeNow
    if (this.mailbox.state._tag === "Done") return Effect.void
    return this.loop
  }

  /** The handler's effect for a request; a handler that throws has died for that request. */
  private handle(envelope: Envelope): Effect.Effect<Res, E, R> {
    try {
      return this.handler(envelope.request, envelope.key)
    } catch (defect) {
      return Exit.die(defect)
    }
  }

  /**
   * A request for a child that waits, with nothing before it: its handler is
   * called at once, in the sender's call. An effect that is done already (an
   * Exit, such as `Effect.succeed`) is its answer, and the child is not even
   * woken; any other is kept for the child to run, first thing once woken.
   */
  takeDirect(envelope: Envelope): TakenDirect {
    if (!this.isWaiting() || this.mailbox.messages.length > 0 || this.index < this.batch.length) return "refused"
    const handled = this.handle(envelope)
    if (Exit.isExit(handled)) {
      this.touched(envelope.enqueuedAt)
      answer(envelope, handled)
      return "done"
    }
    this.touched(envelope.enqueuedAt)
    this.batch = [envelope]
    this.index = 0
    this.handled = handled
    return "wake"
  }

  /** Ended mid-batch: the request being handled and the rest taken are answered. */
  abandon(failed: Exit.Exit<never, DispatchError> | undefined): void {
    for (; this.index < this.batch.length; this.index++) {
      const envelope = this.batch[this.index]!
      if (failed !== undefined) rejectUnsafe(envelope, "childFailed", failed)
      else reject(envelope, "unavailable")
    }
  }
}

/**
 * Run a handler in a fiber of its own, interrupted if the request's Deferred
 * is completed meanwhile by someone else; its exit either way.
 */
const whileUnanswered = <A, E, R>(
  handler: Effect.Effect<A, E, R>,
  deferred: Deferred.Deferred<any, any>
): Effect.Effect<Exit.Exit<A, E>, never, R> =>
  Effect.flatMap(Effect.forkChild(handler, { startImmediately: true }), (fiber) => {
    if (fiber.pollUnsafe() !== undefined) return Effect.succeed(fiber.pollUnsafe()!)
    // on the next tick: completing the Deferred resumes its caller first, whatever the order of registration
    const interrupt = () => fiber.currentDispatcher.scheduleTask(() => fiber.interruptUnsafe(), 0)
    ;(deferred.resumes ??= []).push(interrupt)
    return Effect.ensuring(
      Fiber.await(fiber),
      Effect.sync(() => {
        const resumes = deferred.resumes
        const index = resumes === undefined ? -1 : resumes.indexOf(interrupt)
        if (index >= 0) resumes!.splice(index, 1)
      })
    )
  })

/** A handler that interrupted itself could not serve the request. */
const answer = <Res, E>(envelope: EnvelopeImpl<any, Res, E>, exit: Exit.Exit<Res, E>): void => {
  if (exit._tag === "Failure" && Cause.hasInterruptsOnly(exit.cause)) reject(envelope, "unavailable")
  else replyUnsafe(envelope, exit)
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
