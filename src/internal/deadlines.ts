import type { Clock, Context, Fiber } from "effect"
import { Effect } from "effect"
import type { EnvelopeImpl } from "./envelope.js"

const minCompact = 1024

/**
 * One timer per dispatcher for all its request deadlines. Every request of a
 * level gets the same timeout, so deadlines arrive in order: a FIFO and one
 * sleeping fiber are enough, and a request costs one array slot, not a timer.
 * Answered requests are dropped from the FIFO as it grows, so a long timeout
 * does not keep every request of the last minute alive for the collector.
 *
 * @internal
 */
export class Deadlines {
  private queue: Array<EnvelopeImpl<any, any, any>> = []
  private head = 0
  /** the length at which answered requests are next dropped: twice what was open last time */
  private compactAt = minCompact
  private wake: ((effect: Effect.Effect<void>) => void) | undefined = undefined
  private fiber: Fiber.Fiber<never, never> | undefined = undefined
  /** answers a request whose deadline has passed; set by the dispatcher */
  expire: (envelope: EnvelopeImpl<any, any, any>) => void = () => {}

  constructor(private readonly clock: Clock.Clock, private readonly context: Context.Context<never>) {}

  add(envelope: EnvelopeImpl<any, any, any>): void {
    this.queue.push(envelope)
    if (this.queue.length - this.head >= this.compactAt) this.compact()
    if (this.fiber === undefined) {
      this.fiber = Effect.runForkWith(this.context)(Effect.forever(this.tick, { disableYield: true }))
    } else if (this.wake !== undefined) {
      const wake = this.wake
      this.wake = undefined
      wake(Effect.void)
    }
  }

  /** Keep only the requests still open, in order; amortised O(1) per request. */
  private compact(): void {
    const open: Array<EnvelopeImpl<any, any, any>> = []
    for (let i = this.head; i < this.queue.length; i++) {
      const envelope = this.queue[i]!
      if (envelope.deferred.effect === undefined) open.push(envelope)
    }
    this.queue = open
    this.head = 0
    this.compactAt = Math.max(minCompact, open.length * 2)
  }

  stop(): void {
    this.fiber?.interruptUnsafe()
    this.queue = []
    this.head = 0
  }

  /** Answer what is due, then sleep until the next deadline or the next request. */
  private readonly tick: Effect.Effect<void> = Effect.suspend(() => {
    const now = this.clock.currentTimeMillisUnsafe()
    while (this.head < this.queue.length) {
      const envelope = this.queue[this.head]!
      if (envelope.deferred.effect === undefined && envelope.deadline > now) {
        return Effect.sleep(envelope.deadline - now)
      }
      this.queue[this.head++] = undefined as any
      if (envelope.deferred.effect === undefined) this.expire(envelope)
      if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
        this.queue = this.queue.slice(this.head)
        this.head = 0
      }
    }
    this.queue = []
    this.head = 0
    this.compactAt = minCompact
    return Effect.callback<void>((resume) => {
      this.wake = resume
      return Effect.sync(() => {
        this.wake = undefined
      })
    })
  })
}
