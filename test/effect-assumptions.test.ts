/**
 * Upgrade canaries: each assumption `src/internal/effectInternals.ts` makes of
 * Effect beyond its documented operations, pinned so that an Effect release
 * that changes one fails here, loudly and by name, rather than the library
 * misbehaving quietly.
 */
import { assert, describe, it } from "@effect/vitest"
import { type Cause, Deferred, Effect, Exit, Fiber, Queue } from "effect"
import {
  brandAsDeferred,
  contentsOf,
  headOf,
  isTraced,
  onDone,
  QueueMaker,
  refuseWaitingOffers
} from "../src/internal/effectInternals.js"
import { settle } from "./support/harness.js"

describe("Effect's Queue, as the mailboxes use it", () => {
  it.effect("Queue.bounded has exactly the fields QueueMaker sets, and the state shape it writes", () =>
    Effect.gen(function*() {
      const real = yield* Queue.bounded<number, Cause.Done>(4)
      assert.deepStrictEqual(Object.keys(real).sort(), ["capacity", "dispatcher", "messages", "scheduleRunning", "state", "strategy"])
      assert.deepStrictEqual(Object.keys(real.state).sort(), ["_tag", "awaiters", "offers", "takers"])
      assert.strictEqual(real.state._tag, "Open")
      assert.strictEqual(real.strategy, "suspend")
      assert.strictEqual(real.scheduleRunning, false)
    }))

  it.effect("a made queue is a Queue: offer, take, clear, size, end and Done behave as Queue.bounded's", () =>
    Effect.gen(function*() {
      const maker = yield* QueueMaker.make(2)
      const queue = maker.make()
      assert.isTrue(Queue.isQueue(queue))
      assert.isTrue(Queue.offerUnsafe(queue, 1))
      assert.isTrue(Queue.offerUnsafe(queue, 2))
      assert.isFalse(Queue.offerUnsafe(queue, 3), "full: refused, not queued")
      assert.strictEqual(yield* Queue.size(queue), 2)
      assert.strictEqual(yield* Queue.take(queue), 1)
      assert.deepStrictEqual(yield* Queue.clear(queue), [2])
      assert.isTrue(Queue.offerUnsafe(queue, 4))
      assert.isTrue(Queue.endUnsafe(queue))
      assert.strictEqual(queue.state._tag, "Closing", "ended with a message left: closing")
      assert.isFalse(Queue.offerUnsafe(queue, 5), "an ended queue refuses offers")
      assert.strictEqual(yield* Queue.take(queue), 4)
      assert.strictEqual(queue.state._tag, "Done")
      const done = yield* Effect.flip(Queue.take(queue))
      assert.strictEqual((done as { _tag?: string })._tag, "Done")
    }))

  it.effect("a taker waiting on a made queue is woken by an offer and by its end", () =>
    Effect.gen(function*() {
      const maker = yield* QueueMaker.make(2)
      const queue = maker.make()
      const taker = yield* Effect.forkChild(Queue.take(queue))
      yield* settle
      Queue.offerUnsafe(queue, 7)
      assert.strictEqual(yield* Fiber.join(taker), 7)
      const ended = yield* Effect.forkChild(Effect.exit(Queue.take(queue)))
      yield* settle
      Queue.endUnsafe(queue)
      assert.isTrue(Exit.isFailure(yield* Fiber.join(ended)))
    }))

  it.effect("queues share one line of waiting senders until one is lined up; Queue.offer on a full queue joins its own line", () =>
    Effect.gen(function*() {
      const maker = yield* QueueMaker.make(1)
      const a = maker.make()
      const b = maker.make()
      assert.strictEqual(a.state._tag === "Open" && a.state.offers, b.state._tag === "Open" && b.state.offers)
      Queue.offerUnsafe(a, 1)
      // Effect adds to `offers` only when an offer must wait: without a line of its own, that fails loudly
      const shared = yield* Effect.exit(Queue.offer(a, 2))
      assert.isTrue(Exit.hasDies(shared))
      maker.lineUp(a)
      assert.notStrictEqual(a.state._tag === "Open" && a.state.offers, b.state._tag === "Open" && b.state.offers)
      const waiting = yield* Effect.forkChild(Queue.offer(a, 2))
      yield* settle
      assert.isUndefined(waiting.pollUnsafe(), "waits for room")
      assert.strictEqual(yield* Queue.take(a), 1)
      assert.isTrue(yield* Fiber.join(waiting), "got in once room was made")
      // and a waiting sender can be told "not offered", leaving the queue as it is
      const refused = yield* Effect.forkChild(Queue.offer(a, 3))
      yield* settle
      refuseWaitingOffers(a)
      assert.isFalse(yield* Fiber.join(refused))
      assert.deepStrictEqual(contentsOf(a), [2])
    }))

  it.effect("messages are a MutableList of buckets read from head.offset: headOf and contentsOf see what take would", () =>
    Effect.gen(function*() {
      const maker = yield* QueueMaker.make(100)
      const queue = maker.make()
      assert.isUndefined(headOf(queue))
      for (let i = 0; i < 70; i++) Queue.offerUnsafe(queue, i)
      for (let i = 0; i < 5; i++) Queue.takeUnsafe(queue)
      assert.strictEqual(headOf(queue), 5)
      assert.deepStrictEqual(contentsOf(queue), Array.from({ length: 65 }, (_, i) => i + 5))
    }))
})

describe("Effect's Deferred, as envelopes and waits use it", () => {
  class Branded {
    effect: Effect.Effect<number> | undefined = undefined
    resumes: Array<(effect: Effect.Effect<number>) => void> | undefined = undefined
  }
  brandAsDeferred(Branded.prototype)

  it.effect("an object with the Deferred brand and the two fields is a Deferred to Deferred's functions", () =>
    Effect.gen(function*() {
      const d = new Branded() as unknown as Deferred.Deferred<number>
      assert.isTrue(Deferred.isDeferred(d))
      const waiter = yield* Effect.forkChild(Deferred.await(d))
      yield* settle
      assert.isTrue(Deferred.doneUnsafe(d, Exit.succeed(3)))
      assert.isFalse(Deferred.doneUnsafe(d, Exit.succeed(4)), "the first answer wins")
      assert.strictEqual(yield* Fiber.join(waiter), 3)
      assert.isTrue(yield* Deferred.isDone(d))
    }))

  it.effect("completion calls what waits in `resumes` synchronously, in order, and clears it first", () =>
    Effect.gen(function*() {
      const d = Deferred.makeUnsafe<number>()
      const seen: Array<string> = []
      onDone(d, () => seen.push(`first, resumes cleared: ${d.resumes === undefined}`))
      const stop = onDone(d, () => seen.push("removed"))
      onDone(d, () => seen.push("third"))
      stop()
      Deferred.doneUnsafe(d, Exit.succeed(1))
      assert.deepStrictEqual(seen, ["first, resumes cleared: true", "third"])
    }))

  it.effect("a fiber waiting on a Deferred resumes inside the completion (no scheduler hop)", () =>
    Effect.gen(function*() {
      const d = Deferred.makeUnsafe<number>()
      let after = false
      const waiter = yield* Effect.forkChild(Effect.map(Deferred.await(d), () => (after = true)))
      yield* settle
      Deferred.doneUnsafe(d, Exit.succeed(1))
      assert.isTrue(after, "resumed synchronously")
      yield* Fiber.join(waiter)
    }))
})

describe("Effect's fibers, as sends use them", () => {
  it.effect("fiber.cache tells whether a tracer is installed", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.fiber
      assert.strictEqual(typeof fiber.cache.tracerEnabled, "boolean")
      assert.isBoolean(isTraced(fiber))
    }))

  it.effect("a fiber forked with runForkWith runs synchronously until it suspends", () =>
    Effect.gen(function*() {
      const context = yield* Effect.context<never>()
      let ran = false
      const fiber = Effect.runForkWith(context)(Effect.sync(() => (ran = true)))
      assert.isTrue(ran)
      assert.isDefined(fiber.pollUnsafe())
    }))
})
