import type { Clock, Context } from "effect"
import { Effect, type Fiber } from "effect"

/**
 * Something that can time out: it is told when its due time has passed.
 *
 * @internal
 */
export interface Timed {
  /** the Clock millis it is due at; may move later while it is in the heap (see `IdleTimers`) */
  due: number
  /** its place in the heap, -1 when not in it */
  heapIndex: number
  expire(): void
}

/**
 * The idle timers of one dispatcher's children: a binary min-heap by due time
 * and one fiber that sleeps until the earliest. An idle child costs a heap slot,
 * not a timer fiber of its own, and a child that gets a request before its time
 * leaves the heap at once. The fiber runs only while timers are pending.
 *
 * A child served without waking (see `serve`'s `takeDirect`) only moves its
 * `due` later, in O(1): the heap stays ordered by the due time each entry had
 * when it was placed (`keys`), and an entry found at the top with a later
 * `due` is put back in its place instead of expiring.
 *
 * @internal
 */
export class IdleTimers {
  private readonly heap: Array<Timed> = []
  /** the due time each heap entry is ordered by: its `due` when last placed */
  private readonly keys: Array<number> = []
  private fiber: Fiber.Fiber<void, never> | undefined = undefined
  /** the due time the fiber sleeps until */
  private sleepingUntil = Infinity
  private stopped = false

  constructor(private readonly clock: Clock.Clock, private readonly context: Context.Context<never>) {}

  add(timed: Timed): void {
    if (this.stopped) return
    timed.heapIndex = this.heap.length
    this.heap.push(timed)
    this.keys.push(timed.due)
    this.up(timed.heapIndex)
    if (this.fiber === undefined) {
      this.fiber = this.start()
    } else if (timed.due < this.sleepingUntil) {
      // an earlier due time than the one slept for: start over
      this.fiber.interruptUnsafe()
      this.fiber = this.start()
    }
  }

  remove(timed: Timed): void {
    const index = timed.heapIndex
    if (index < 0) return
    timed.heapIndex = -1
    const last = this.heap.pop()!
    const lastKey = this.keys.pop()!
    if (index < this.heap.length) {
      this.setAt(index, last, lastKey)
      this.down(index)
      this.up(index)
    }
  }

  // the loop starts on the next tick, once `fiber` is set: it checks that it is still the current one
  private start(): Fiber.Fiber<void, never> {
    this.sleepingUntil = this.keys[0]!
    return Effect.runForkWith(this.context)(Effect.andThen(Effect.yieldNow, this.loop))
  }

  stop(): void {
    this.stopped = true
    this.fiber?.interruptUnsafe()
    this.fiber = undefined
    for (const timed of this.heap) timed.heapIndex = -1
    this.heap.length = 0
    this.keys.length = 0
  }

  private readonly loop: Effect.Effect<void> = Effect.withFiber((fiber) => {
    const now = this.clock.currentTimeMillisUnsafe()
    while (this.heap.length > 0 && this.keys[0]! <= now) {
      const first = this.heap[0]!
      if (first.due > now) {
        // served since it was placed: not idle that long, so back in its place by its new due time
        this.keys[0] = first.due
        this.down(0)
        continue
      }
      this.remove(first)
      first.expire()
    }
    // an expiry may have started a replacement fiber: this one then just ends
    if (this.fiber !== fiber) return Effect.void
    if (this.heap.length === 0) {
      this.fiber = undefined
      this.sleepingUntil = Infinity
      return Effect.void
    }
    this.sleepingUntil = this.keys[0]!
    return Effect.andThen(Effect.sleep(this.sleepingUntil - now), this.loop)
  })

  private up(index: number): void {
    const item = this.heap[index]!
    const key = this.keys[index]!
    while (index > 0) {
      const parent = (index - 1) >> 1
      if (this.keys[parent]! <= key) break
      this.setAt(index, this.heap[parent]!, this.keys[parent]!)
      index = parent
    }
    this.setAt(index, item, key)
  }

  private down(index: number): void {
    const { heap, keys } = this
    const item = heap[index]!
    const key = keys[index]!
    for (;;) {
      const left = index * 2 + 1
      if (left >= heap.length) break
      const right = left + 1
      const child = right < heap.length && keys[right]! < keys[left]! ? right : left
      if (keys[child]! >= key) break
      this.setAt(index, heap[child]!, keys[child]!)
      index = child
    }
    this.setAt(index, item, key)
  }

  private setAt(index: number, timed: Timed, key: number): void {
    this.heap[index] = timed
    this.keys[index] = key
    timed.heapIndex = index
  }
}
