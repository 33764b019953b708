import type { Cause, Clock, Queue } from "effect"
import { Effect, Exit } from "effect"
import type { EnvelopeImpl } from "./envelope.js"
import type { IdleTimers, Timed } from "./idleTimers.js"

type Mailbox = Queue.Dequeue<EnvelopeImpl<any, any, any>, Cause.Done>

const woken = Exit.succeed(true)
const timedOut = Exit.succeed(false)

/**
 * A child body's way of waiting for its mailbox (`serve`'s, and a downstream
 * dispatcher's router), made once per child so a wait allocates nothing of
 * its own. It takes nothing: once woken, the body takes everything waiting in
 * one step (`Queue.clear`). With an idle time it also sits in the
 * dispatcher's idle-timer heap.
 *
 * Who wakes it:
 * - `woken by the dispatcher` (a mailbox of the library's): only the library
 *   puts requests in a child's mailbox or ends it, and it wakes the body each
 *   time (`wakeIfWaiting`), inside the sender's call when it can. No queue
 *   taker is registered, so an offer costs no scheduled wake-up either.
 * - otherwise: it joins the mailbox's takers (the `Queue.Taker` protocol that
 *   `Queue.take` itself uses) and the queue wakes it.
 *
 * `wait` succeeds with `true` when there is something to take or the mailbox
 * has ended (or it was woken), `false` when the idle time passed first.
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
    private readonly idleMillis: number | undefined,
    wokenByDispatcher: boolean
  ) {
    // on interruption: leave the takers and the timers, so nothing refers to a wait that is over
    const leave = Effect.sync(() => {
      this.resumeWait = undefined
      if (!wokenByDispatcher && mailbox.state._tag !== "Done") mailbox.state.takers.delete(this)
      timers?.remove(this)
    })
    this.wait = Effect.callback<boolean>((resume) => {
      const state = mailbox.state
      if (state._tag === "Done" || mailbox.messages.length > 0) return resume(woken)
      this.resumeWait = resume
      if (!wokenByDispatcher) state.takers.add(this)
      if (timers !== undefined) {
        this.due = clock!.currentTimeMillisUnsafe() + idleMillis!
        timers.add(this)
      }
      return leave
    })
  }

  /** Waiting for its mailbox right now? */
  isWaiting(): boolean {
    return this.resumeWait !== undefined
  }

  /**
   * Served a request accepted at `now` without waking (see `serve`): the idle
   * time starts over. Only `due` moves; the heap catches up if it gets there.
   */
  protected touched(now: number): void {
    if (this.heapIndex >= 0) this.due = now + this.idleMillis!
  }

  /** Resume a wait now: the body looks at its mailbox again. */
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
