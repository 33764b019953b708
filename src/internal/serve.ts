import { Cause, type Clock, type Deferred, Duration, Effect, Exit, Fiber, Option, Queue } from "effect"
import type * as Dispatcher from "../Dispatcher.js"
import { ChildFailed, type DispatchError, InvalidOptions } from "../DispatchError.js"
import { idleTimersOf } from "./core.js"
import { describeValue, notAnEffect } from "./describe.js"
import { onDone } from "./effectInternals.js"
import { answersEverything, type Entry, entryOf, type Holder, holds, reject, type TakenDirect } from "./entry.js"
import { type EnvelopeImpl, isAnswered, rejectUnsafe, replyUnsafe } from "./envelope.js"
import type { IdleTimers } from "./idleTimers.js"
import { invalidSpawn } from "./options.js"
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
  const settings = settingsOf(options)
  return typeof settings === "string" ? Effect.die(new InvalidOptions({ message: settings })) : run(child, handler, settings)
}

/**
 * `serve` as a ready `spawn`, its options checked now: a bad one marks the
 * spawn, and `make`, `layer` or `runChild` given it fails `InvalidOptions`
 * before any child starts.
 *
 * @internal
 */
export const serveWith = <Req, Res, E, R>(
  handler: (request: Req, key: Dispatcher.Key) => Effect.Effect<Res, E, R>,
  options?: Dispatcher.ServeOptions
): (child: Dispatcher.ChildSpec<Req, Res, E>) => Effect.Effect<void, never, R> => {
  const settings = settingsOf(options)
  if (typeof settings !== "string") return (child) => run(child, handler, settings)
  const invalid = () => Effect.die(new InvalidOptions({ message: settings }))
  Object.defineProperty(invalid, invalidSpawn, { value: settings })
  return invalid
}

/** `serve`'s options as the machinery uses them, or what is wrong with them. */
interface Settings {
  readonly ttl: number | undefined
  readonly interruptOnStop: boolean
}

const settingsOf = (options: Dispatcher.ServeOptions | undefined): Settings | string => {
  if (options !== undefined && (typeof options !== "object" || options === null)) {
    return `serve options: expected an object, got ${describeValue(options)}`
  }
  const ttl = idleMillis(options)
  if (typeof ttl === "string") return ttl
  const onStop = options?.onStop ?? "drain"
  if (onStop !== "drain" && onStop !== "interrupt") {
    return `onStop: expected "drain" or "interrupt", got ${describeValue(onStop)}`
  }
  return { ttl, interruptOnStop: onStop === "interrupt" }
}

const run = <Req, Res, E, R>(
  child: Dispatcher.ChildSpec<Req, Res, E>,
  handler: (request: Req, key: Dispatcher.Key) => Effect.Effect<Res, E, R>,
  settings: Settings
): Effect.Effect<void, never, R> =>
  Effect.suspend(() => {
    answersEverything(child)
    const entry = entryOf(child)
    const core = entry?.core
    const ttl = settings.ttl
    const timers = ttl !== undefined && core !== undefined ? idleTimersOf(core) : undefined
    const server = new Server(
      child.requests as any,
      handler,
      timers,
      core?.clock,
      ttl,
      settings.interruptOnStop,
      entry !== undefined,
      core?.fenced
    )
    // a dispatcher's child: if it ends mid-batch, its disposal answers what it held
    if (entry !== undefined && holds(entry, server)) return server.loop
    return Effect.onInterrupt(server.loop, () => Effect.sync(() => server.abandon(undefined)))
  })

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
    wokenByDispatcher: boolean,
    /** the dispatcher's fence (`Options.fence`): a fenced request is answered `Unavailable`, never handled */
    private readonly fenced: ((key: string) => boolean) | undefined
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
      if (this.fenced !== undefined && this.fenced(envelope.key)) {
        reject(envelope, "unavailable")
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

  /**
   * The handler's effect for a request; a handler that throws has died for
   * that request, and one that returns no Effect (a Promise, say) is answered
   * `ChildFailed` saying so.
   */
  private handle(envelope: Envelope): Effect.Effect<Res, E, R> {
    let handled: Effect.Effect<Res, E, R>
    try {
      handled = this.handler(envelope.request, envelope.key)
    } catch (defect) {
      return Exit.die(defect)
    }
    // an Exit (`Effect.succeed`...) is an Effect: the common case pays one check, not two
    return Exit.isExit(handled) || Effect.isEffect(handled) ? handled : notAnEffectAnswer(envelope, handled)
  }

  /**
   * A request for a child that waits, with nothing before it: its handler is
   * called at once, in the sender's call. An effect that is done already (an
   * Exit, such as `Effect.succeed`) is its answer, and the child is not even
   * woken; any other is kept for the child to run, first thing once woken.
   */
  takeDirect(envelope: Envelope): TakenDirect {
    if (!this.isWaiting() || this.mailbox.messages.length > 0 || this.index < this.batch.length) return "refused"
    if (this.fenced !== undefined && this.fenced(envelope.key)) {
      reject(envelope, "unavailable")
      return "done"
    }
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

  /** Taken and not answered yet: the request being handled and the rest of its batch (for `hotKeys`). */
  heldCount(): number {
    return this.batch.length - this.index
  }

  /** The request being handled, if any: the oldest this child holds (for `hotKeys`). */
  firstHeld(): Envelope | undefined {
    return this.index < this.batch.length ? this.batch[this.index] : undefined
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
 * A handler returned something that is not an Effect: the request is answered
 * `ChildFailed` naming the mistake and its fix, said once per dispatcher in
 * the log; the child serves the next request.
 */
const notAnEffectAnswer = (envelope: Envelope, value: unknown): Effect.Effect<any> => {
  const error = new TypeError(notAnEffect("the handler", envelope.key, value))
  const entry = envelope.owner as Entry
  rejectUnsafe(
    envelope,
    "childFailed",
    Exit.fail(new ChildFailed({ key: envelope.key, cause: Cause.die(error) }, { disableChecks: true }))
  )
  // what follows is the "handler's" effect: its answer finds the request answered already
  if (entry.core.warnedNotAnEffect) return Exit.void
  entry.core.warnedNotAnEffect = true
  return Effect.logWarning(error.message).pipe(Effect.annotateLogs({ ...entry.core.annotations, key: envelope.key }))
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
    const stopWatching = onDone(deferred, () => fiber.currentDispatcher.scheduleTask(() => fiber.interruptUnsafe(), 0))
    return Effect.ensuring(Fiber.await(fiber), Effect.sync(stopWatching))
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
