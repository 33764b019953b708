import { type Cause, Deferred, Effect, Exit, Queue } from "effect"
import type * as Dispatcher from "../Dispatcher.js"
import { type InvalidOptions, Unavailable } from "../DispatchError.js"
import { Core, inheritFence, Running } from "./core.js"
import { beginStop, force, place, type Placement, stop, Wait } from "./dispatcher.js"
import { answersEverything, entryOf, type Holder, holds, reject, type TakenDirect } from "./entry.js"
import { EnvelopeImpl, isAnswered } from "./envelope.js"
import { keyOf } from "./keys.js"
import { Mailboxes } from "./mailbox.js"
import { resolve } from "./options.js"
import { waitForRoom } from "./overflow.js"
import { Waiting } from "./waiting.js"

/**
 * A dispatcher under a dispatcher (Go: `Spawn` with `WithChildSpec`). Its
 * router takes everything waiting in the parent's mailbox and routes each
 * request into this level's children; the caller's Deferred travels down
 * unchanged, so a request refused here is answered straight to the original
 * caller. It returns when its mailbox has ended and its children are gone, or
 * when its last child has ended and no request waits.
 *
 * @internal
 */
export const runChild = <Req, Res, E, R>(
  spec: Dispatcher.ChildSpec<Req, Res, E>,
  factory: Dispatcher.Factory<Req, Res, E, R>,
  options?: Dispatcher.Options
): Effect.Effect<void, InvalidOptions, R> =>
  Effect.gen(function*() {
    const resolved = yield* resolve(options, factory)
    const context = yield* Effect.context<R>()
    const parent = entryOf(spec)
    const path = `${parent === undefined ? "test" : parent.core.path}/${spec.key}/${resolved.name}`
    const mailboxes = yield* Mailboxes.make(resolved.capacity)
    const core = new Core(resolved, factory, context as any, path, mailboxes)
    if (parent !== undefined) inheritFence(core, parent.core, spec.key)
    answersEverything(spec)
    const router = new Router(core, spec.requests as any, parent !== undefined)
    // the parent wakes the router as it would a serve child
    if (parent !== undefined) {
      holds(parent, router)
      parent.more.downstream = core
    }
    // the last child is gone and nothing waits: the router looks again, and ends
    core.onIdle = () => router.wakeNow()
    yield* router.loop.pipe(
      Effect.onExit((exit) =>
        Effect.andThen(
          // interrupted (its parent's shutdownTimeout passed, say): its own children are interrupted too
          Exit.hasInterrupts(exit) ? Effect.andThen(Effect.sync(() => forceStop(core)), stop(core)) : stop(core),
          Effect.sync(() => {
            if (parent?.extra?.downstream === core) parent.extra.downstream = undefined
          })
        )
      )
    )
  })

type Envelope = EnvelopeImpl<any, any, any>

/** Interrupted: its children are interrupted too, and what they held answered `Unavailable`. */
const forceStop = (core: Core): void => {
  beginStop(core)
  force(core)
}

class Router extends Waiting implements Holder {
  private routed = false
  readonly loop: Effect.Effect<void>
  private readonly takeNow: Effect.Effect<void>

  constructor(readonly core: Core, input: Queue.Dequeue<Envelope, Cause.Done>, wokenByDispatcher: boolean) {
    super(input, undefined, undefined, undefined, wokenByDispatcher)
    this.takeNow = Effect.flatMap(Queue.clear(input), (batch) => {
      this.route(batch)
      return this.next()
    })
    this.loop = Effect.flatMap(this.wait, () => this.next())
  }

  next(): Effect.Effect<void> {
    const input = this.mailbox
    if (this.routed && this.core.registry.size === 0 && input.messages.length === 0) return Effect.void
    if (input.messages.length > 0) return this.takeNow
    if (input.state._tag === "Done") return Effect.void
    return this.loop
  }

  /**
   * The parent hands a request straight to an idle router, skipping its
   * mailbox: the same as offering it and waking the router to take it, with
   * no fiber resumed. Only while the router waits on an empty mailbox, so the
   * order of requests is kept.
   */
  takeDirect(envelope: Envelope): TakenDirect {
    if (!this.isWaiting() || this.mailbox.messages.length > 0 || this.core.state !== Running) return "refused"
    const core = this.core
    this.routed = true
    core.routing = true
    try {
      // accepted above in this very call: the same moment
      this.routeOne(envelope, envelope.enqueuedAt)
    } finally {
      core.routing = false
    }
    // placing may have ended the last child below (it answered and ended at once): the router looks again
    if (core.registry.size === 0) this.wakeNow()
    return "done"
  }

  /** Routing is synchronous: everything taken is placed before anything else runs. */
  private route(batch: ReadonlyArray<Envelope>): void {
    const core = this.core
    this.routed = true
    core.routing = true
    try {
      for (const envelope of batch) this.routeOne(envelope, undefined)
    } finally {
      core.routing = false
    }
  }

  private routeOne(envelope: Envelope, now: number | undefined): void {
    if (isAnswered(envelope)) return
    const core = this.core
    // the level above fences the key this level serves: refused there, as the level above would
    if (core.fencedAbove !== undefined && core.fencedAbove()) return void reject(envelope, "unavailable")
    const key = keyOf(core.factory, envelope.request)
    if (typeof key !== "string") Deferred.doneUnsafe(envelope.deferred, key)
    else if (core.options.fence !== undefined && core.fenced!(key)) {
      // this level's own fence: placed nowhere
      core.unavailable++
      Deferred.doneUnsafe(envelope.deferred, Exit.fail(new Unavailable({ key })))
    } else settle(core, envelope, place(core, key, envelope.request, envelope.deferred, envelope.deadline, now))
  }

  /** Nothing is held across a wait: a batch is routed whole. */
  abandon(): void {}

  /** A stop of the parent ends this level by ending its mailbox: it stops its own children in turn. */
  readonly interruptOnStop = false
}

const settle = (core: Core, envelope: EnvelopeImpl<any, any, any>, placement: Placement): void => {
  if (placement instanceof EnvelopeImpl) return
  if (placement instanceof Wait) {
    // a blocked key must not hold up the others: wait in a fiber of its own
    Effect.runForkWith(core.context)(
      Effect.flatMap(waitForRoom(core, placement), (exit) =>
        Effect.sync(() => {
          if (exit._tag === "Failure" && !isAnswered(envelope)) {
            Deferred.doneUnsafe(envelope.deferred, exit as Exit.Exit<never, any>)
          }
        }))
    )
    return
  }
  // refused, counted by `place` at this level: answered to the original caller
  if (!isAnswered(envelope)) Deferred.doneUnsafe(envelope.deferred, placement)
}
