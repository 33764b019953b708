/**
 * The fake factory of Kafka-Pixy's dispatcher tests: `spawn` hands the test
 * each child (its spec and controls) through a queue, then waits until the
 * test tells that child how to end.
 */
import { Cause, Deferred, Effect, Exit, Fiber, Queue } from "effect"
import { Dispatcher } from "../../src/index.js"

export interface TestChildHandle<Req, Res> {
  readonly key: string
  readonly spec: Dispatcher.ChildSpec<Req, Res, string>
  /** take the next request from the child's mailbox (waits) */
  readonly take: Effect.Effect<Dispatcher.Envelope<Req, Res, string>, Cause.Done>
  /** take the next request and answer it with `value` */
  readonly takeAndAnswer: (value: Res) => Effect.Effect<Req, Cause.Done>
  /** tell the child to end: success by default, or with the given exit */
  readonly end: (exit?: Exit.Exit<void, string>) => Effect.Effect<void>
  /** completed when the child's Scope has closed (its finalizers ran) */
  readonly finalized: Deferred.Deferred<void>
}

export const fakeFactory = <Req, Res = string>(keyOf: (request: Req) => string) =>
  Effect.gen(function*() {
    const spawned = yield* Queue.unbounded<TestChildHandle<Req, Res>>()
    const all: Array<TestChildHandle<Req, Res>> = []
    // after `endAll`, every child (successors included) drains its mailbox until the stop ends it
    let released = false
    const drain = (spec: Dispatcher.ChildSpec<Req, Res, string>) =>
      Effect.forever(Effect.flatMap(Queue.take(spec.requests), (envelope) => envelope.fail("released"))).pipe(
        Effect.catchCause(() => Effect.void)
      )
    const factory: Dispatcher.Factory<Req, Res, string> = {
      keyOf,
      spawn: (spec) =>
        Effect.gen(function*() {
          const stop = yield* Deferred.make<void, string>()
          const finalized = yield* Deferred.make<void>()
          yield* Effect.addFinalizer(() => Deferred.succeed(finalized, undefined))
          const take = Queue.take(spec.requests)
          const handle: TestChildHandle<Req, Res> = {
            key: spec.key,
            spec,
            take,
            takeAndAnswer: (value) =>
              Effect.flatMap(take, (envelope) => Effect.as(envelope.succeed(value), envelope.request)),
            end: (exit = Exit.void) => Effect.asVoid(Deferred.done(stop, exit)),
            finalized
          }
          all.push(handle)
          if (released) return yield* drain(spec)
          yield* Queue.offer(spawned, handle)
          yield* Deferred.await(stop)
          if (released) return yield* drain(spec)
        })
    }
    return {
      factory,
      /** the next child spawned (waits for it) */
      nextChild: Queue.take(spawned),
      /** how many spawned children the test has not taken yet */
      unclaimed: Queue.size(spawned),
      /** let every child, now and later, drain its mailbox and end with it (a stop waits for children) */
      endAll: Effect.suspend(() => {
        released = true
        return Effect.forEach(all, (child) => child.end(), { discard: true })
      })
    }
  })

/** One level: a dispatcher keyed by group over fake children. */
export const fakeGroups = (options?: Dispatcher.Options) =>
  Effect.gen(function*() {
    const fake = yield* fakeFactory((r: Rq) => r.group)
    return { ...fake, d: yield* Dispatcher.make(fake.factory, options) }
  })

/**
 * Two levels: a root keyed by group whose children are downstream dispatchers
 * (`inner` options) keyed by topic over fake children.
 */
export const fakeTopics = (options: { readonly root?: Dispatcher.Options; readonly inner?: Dispatcher.Options } = {}) =>
  Effect.gen(function*() {
    const inner = yield* fakeFactory((r: Rq) => r.topic)
    const d = yield* Dispatcher.make<Rq, string, string>({
      keyOf: (r) => r.group,
      spawn: (child) => Dispatcher.runChild(child, inner.factory, options.inner)
    }, options.root)
    return { ...inner, d }
  })

/** Children that serve with `handler` once `gate` opens: until then their mailboxes fill up. */
export const gatedServe = <Req, Res>(
  gate: Deferred.Deferred<void>,
  keyOf: (request: Req) => string,
  handler: (request: Req) => Effect.Effect<Res>
): Dispatcher.Factory<Req, Res> => ({
  keyOf,
  spawn: (spec) => Effect.andThen(Deferred.await(gate), Dispatcher.serve(spec, handler))
})

/** Let every runnable fiber run until nothing is left to do. */
export const settle: Effect.Effect<void> = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

export const isDone = <A, E>(fiber: Fiber.Fiber<A, E>): boolean => fiber.pollUnsafe() !== undefined

/** The DispatchError a request was answered with (dies if it was answered otherwise). */
export const errorOf = <A, E>(deferred: Deferred.Deferred<A, E>): Effect.Effect<Dispatcher.DispatchError> =>
  Effect.flip(Deferred.await(deferred)).pipe(
    Effect.orDie,
    Effect.flatMap((error) =>
      typeof error === "object" && error !== null && "_tag" in error && "key" in error
        ? Effect.succeed(error as unknown as Dispatcher.DispatchError)
        : Effect.die(new Error(`expected a DispatchError, got ${String(error)}`))
    )
  )

/** "g1:t1" style requests: the group is the root key, the topic the downstream one. */
export interface Rq {
  readonly group: string
  readonly topic: string
  readonly n: number
}

export const rq = (group: string, topic: string, n = 0): Rq => ({ group, topic, n })
