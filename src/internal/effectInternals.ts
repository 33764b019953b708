/**
 * Everything this library assumes of Effect beyond its documented operations,
 * in one place. Each assumption is pinned by `test/effect-assumptions.test.ts`,
 * which fails loudly if an Effect release changes it.
 *
 * Why the public way is not enough:
 * - A mailbox is made inside the one synchronous step that places a new key's
 *   first request (nothing may run between "is the key registered?" and
 *   "register it"), but `Queue.make` is an Effect: it needs a fiber step of
 *   its own. So a mailbox is made the way `Queue.make` makes one, from a real
 *   queue's prototype, with the fields of the `Queue` interface.
 * - An idle child must stay small (W4): mailboxes share one empty line of
 *   waiting senders until a sender has to wait, where `Queue.make` gives each
 *   queue three `Set`s of its own.
 * - An envelope is the caller's `Deferred` itself (one object per request, not
 *   two), so it carries the brand `Deferred.isDeferred` looks for.
 *
 * The fields read here (`Queue.messages`, `Queue.state`, `Deferred.effect`,
 * `Deferred.resumes`, `Fiber.cache`) are part of Effect's typed interfaces;
 * what is assumed is how Effect uses them, and that is what the tests pin.
 */
import { type Cause, Deferred, Effect, type Fiber, MutableList, Queue } from "effect"

/** @internal */
export type AnyQueue = Queue.Queue<any, Cause.Done>

/**
 * The mailbox maker: a template made by `Queue.bounded` lends its prototype
 * and its scheduler dispatcher.
 *
 * @internal
 */
export class QueueMaker {
  private constructor(
    private readonly template: AnyQueue,
    readonly capacity: number,
    private readonly noOffers: Set<any>
  ) {}

  static make(capacity: number): Effect.Effect<QueueMaker> {
    return Effect.map(Queue.bounded<any, Cause.Done>(capacity), (template) => {
      const maker = new QueueMaker(template, capacity, new NoOffers())
      // the template is a real Queue.bounded: a made queue must have every field it has
      const copy = maker.make()
      for (const field of Object.keys(template)) {
        if (!(field in copy)) throw new Error(`effect-dispatcher: unexpected Queue field "${field}"`)
      }
      return maker
    })
  }

  /** the scheduler the queues wake their takers on */
  get dispatcher(): AnyQueue["dispatcher"] {
    return this.template.dispatcher
  }

  /** A bounded, suspending queue, as `Queue.bounded(capacity)` would make it, synchronously. */
  make(): AnyQueue {
    const template = this.template
    const self = Object.create(Object.getPrototypeOf(template))
    self.dispatcher = template.dispatcher
    self.capacity = this.capacity
    self.strategy = "suspend"
    self.messages = MutableList.make()
    self.scheduleRunning = false
    self.state = { _tag: "Open", takers: new Set(), offers: this.noOffers, awaiters: new Set() }
    return self
  }

  /** A sender is about to wait for room in `queue` (`Queue.offer` on a full queue): it gets a line of its own first. */
  lineUp(queue: AnyQueue): void {
    const state = queue.state as { _tag: string; offers: Set<any> }
    if (state._tag === "Open" && state.offers === this.noOffers) state.offers = new Set()
  }
}

/**
 * The line of senders shared by the queues nobody waits on yet: Effect adds to
 * a queue's `offers` only when an offer must wait, and the library lines a
 * queue up before that. Should anything else try, it fails loudly rather than
 * share a line between queues.
 */
class NoOffers extends Set<any> {
  override add(): this {
    throw new Error("effect-dispatcher: only the dispatcher offers to a child's mailbox")
  }
}

/**
 * The first message of a queue, without taking it.
 *
 * @internal
 */
export const headOf = <A>(queue: Queue.Dequeue<A, any>): A | undefined => {
  const head = queue.messages.head
  return queue.messages.length > 0 && head !== undefined ? head.array[head.offset] : undefined
}

/**
 * Every message of a queue, in order, without taking them.
 *
 * @internal
 */
export const contentsOf = <A>(queue: Queue.Dequeue<A, any>): Array<A> => {
  const out: Array<A> = []
  for (let bucket = queue.messages.head; bucket !== undefined; bucket = bucket.next) {
    for (let i = bucket.offset; i < bucket.array.length; i++) out.push(bucket.array[i])
  }
  return out
}

/**
 * Senders waiting for room in a queue are told "not offered" (`Queue.offer`
 * returns `false`), and the queue is left as it is.
 *
 * @internal
 */
export const refuseWaitingOffers = (queue: AnyQueue): void => {
  const state = queue.state
  if (state._tag === "Done") return
  for (const offer of state.offers) {
    state.offers.delete(offer)
    if (offer._tag === "Single") offer.resume(Effect.succeed(false))
    else offer.resume(Effect.succeed(offer.remaining.slice(offer.offset)))
  }
}

/**
 * Give a class's instances the brand of a `Deferred`, taken from a real one:
 * `Deferred.isDeferred` accepts them and `Deferred.await`/`doneUnsafe` use
 * their `effect` and `resumes` fields.
 *
 * @internal
 */
export const brandAsDeferred = (proto: object): void => {
  const real = Deferred.makeUnsafe<unknown>()
  for (let from: object | null = real; from !== null && from !== Object.prototype; from = Object.getPrototypeOf(from)) {
    for (const key of Reflect.ownKeys(from)) {
      if (typeof key === "string" && key.startsWith("~effect/")) {
        Object.defineProperty(proto, key, { value: (from as Record<string, unknown>)[key] })
      }
    }
  }
}

/**
 * Be called when a Deferred is completed, as its awaiters are: synchronously,
 * inside the completion, in the order of registration. Returns how to stop.
 *
 * @internal
 */
export const onDone = <A, E>(
  deferred: Deferred.Deferred<A, E>,
  f: (effect: Effect.Effect<A, E>) => void
): () => void => {
  ;(deferred.resumes ??= []).push(f)
  return () => {
    const resumes = deferred.resumes
    const index = resumes === undefined ? -1 : resumes.indexOf(f)
    if (index >= 0) resumes!.splice(index, 1)
  }
}

/**
 * Whether spans made by this fiber go anywhere: the native default tracer
 * records nothing anyone can read, so a send without a tracer makes no span.
 *
 * @internal
 */
export const isTraced = (fiber: Fiber.Fiber<unknown, unknown>): boolean =>
  fiber.cache.tracerEnabled && fiber.cache.tracer !== undefined
