/**
 * One global, first-in first-out scheduler for everything a history runs, so
 * that the driver can tell when the system has nothing left to do.
 *
 * Effect resumes a fiber woken by a Deferred or a Queue synchronously, and
 * everything else that runs later (a yield, a forked fiber's first step, a
 * queue waking its takers) goes through the scheduler. So "no task is queued"
 * while the driver runs means every other fiber is suspended: waiting on a
 * queue, a Deferred or a TestClock sleep. That is the quiescence `settle`
 * waits for between two commands, which makes each history deterministic.
 */
import { Effect, type Scheduler } from "effect"

export class QuiescentScheduler implements Scheduler.Scheduler {
  readonly executionMode = "async" as const
  /** tasks queued and not started yet */
  pending = 0
  private buckets: Array<[priority: number, tasks: Array<() => void>]> = []
  private scheduled = false

  shouldYield(fiber: { readonly currentOpCount: number }): boolean {
    return fiber.currentOpCount >= 2048
  }

  makeDispatcher(): Scheduler.SchedulerDispatcher {
    return {
      scheduleTask: (task, priority) => this.schedule(task, priority),
      flush: () => this.drain(Infinity)
    }
  }

  private schedule(task: () => void, priority: number): void {
    this.pending++
    const buckets = this.buckets
    let index = 0
    while (index < buckets.length && buckets[index]![0] <= priority) index++
    const before = buckets[index - 1]
    if (before !== undefined && before[0] === priority) before[1].push(task)
    else buckets.splice(index, 0, [priority, [task]])
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(this.run)
    }
  }

  private readonly run = () => {
    this.scheduled = false
    this.drain(10_000)
    if (this.pending > 0 && !this.scheduled) {
      this.scheduled = true
      setImmediate(this.run)
    }
  }

  private drain(budget: number): void {
    while (budget-- > 0) {
      const bucket = this.buckets[0]
      if (bucket === undefined) return
      const task = bucket[1].shift()!
      if (bucket[1].length === 0) this.buckets.shift()
      this.pending--
      task()
    }
  }
}

/**
 * Yield until no other task is queued: every fiber of the system under test
 * is suspended. Dies if the system never comes to rest (a livelock).
 */
export const settleWith = (scheduler: QuiescentScheduler): Effect.Effect<void> =>
  Effect.gen(function*() {
    for (let i = 0; i < 10_000; i++) {
      yield* Effect.yieldNow
      if (scheduler.pending === 0) return
    }
    return yield* Effect.die(new Error("the system did not come to rest after 10,000 yields"))
  })
