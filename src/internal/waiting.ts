import type { Cause, Clock, Queue } from "effect"
import { Effect, Exit } from "effect"
import type { EnvelopeImpl } from "./envelope.js"
import type { IdleTimers, Timed } from "./idleTimers.js"

type Mailbox = Queue.Dequeue<EnvelopeImpl<any, any, any>, Cause.Done>

const woken = Exit.succeed(true)
const timedOut = Exit.succeed(false)

/**
 * A child body's way of waiting for its mailbox (`serve`'s, and a downstream
 * dispatcher's router). It joins the mailbox's takers (the `Queue.Taker`
 * protocol `Queue.take` itself uses) with itself, made once per child, so a
 * wait allocates no closures or effects of its own; it takes nothing, and once
 * woken the body takes everything waiting in one step (`Queue.clear`). With an
 * idle time it also sits in the dispatcher's idle-timer heap.
 *
 * A sender can take a waiting body off the queue's takers and resume it
 * directly (`detachWaiting`, then `resumeNow`), inside its own call.
 *
 * `wait` succeeds with `true` when there is something to take or the mailbox
 * has ended (or `wakeNow` was called), `false` when the idle time passed first.
 *
 * @internal
 */
export abstract class Waiting implements Queue.Queue.Taker<Cause.Done>, Timed {
  due = 0
  heapIndex = -1
  private resumeWait: ((effect: Effect.Effect<boolean>) => void) | undefined = undefined
  protected readonly wait: Effect.Effect<boolean>

  constructor(
    readonly mailbox: Mailbox,
    private readonly timers: IdleTimers | undefined,
    clock: Clock.Clock | undefined,
    idleMillis: number | undefined
  ) {
    // on interruption: leave the takers and the timers, so nothing refers to a wait that is over
    const leave = Effect.sync(() => {
      this.resumeWait = undefined
      if (mailbox.state._tag !== "Done") mailbox.state.takers.delete(this)
      timers?.remove(this)
    })
    this.wait = Effect.callback<boolean>((resume) => {
      const state = mailbox.state
      if (state._tag === "Done" || mailbox.messages.length > 0) return resume(woken)
      this.resumeWait = resume
      state.takers.add(this)
      if (timers !== undefined) {
        this.due = clock!.currentTimeMillisUnsafe() + idleMillis!
        timers.add(this)
      }
      return leave
    })
  }

  /** Waiting for the mailbox now? Then leave the queue's takers, to be resumed by the caller. */
  detachWaiting(): this | undefined {
    if (this.resumeWait === undefined) return undefined
    const state = this.mailbox.state
    if (state._tag !== "Done") state.takers.delete(this)
    return this
  }

  /** Resume a wait now (after `detachWaiting`, or to have the body look again). */
  wakeNow(): void {
    this.wake(woken)
  }

  /** Taker: can it take now? */
  ready(): boolean {
    return this.mailbox.messages.length > 0
  }

  /** Taker: woken by the queue (an offer, or its end); whatever it says, the body looks again. */
  resume(): void {
    this.wake(woken)
  }

  /** Timed: the idle time passed first. */
  expire(): void {
    const state = this.mailbox.state
    if (state._tag !== "Done") state.takers.delete(this)
    this.wake(timedOut)
  }

  private wake(exit: Exit.Exit<boolean>): void {
    this.timers?.remove(this)
    const resume = this.resumeWait
    this.resumeWait = undefined
    resume?.(exit)
  }
}
