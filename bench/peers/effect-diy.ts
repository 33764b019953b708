/**
 * effect-diy: what an Effect 4 user writes without this library. A Map of
 * key -> `Queue.bounded`, a fiber per key forked into a Scope, `Deferred`
 * replies, all with the ordinary (effectful) APIs and `Effect.gen`. It does
 * what a careful user would add for a dispatcher: a full mailbox is answered
 * with an error at once, a child that ends with requests left gets a successor
 * (otherwise its key is forgotten), and closing the Scope stops gracefully:
 * every mailbox is ended, the children drain them and end.
 */
import { type Cause, Data, Deferred, Effect, Exit, Fiber, Queue, Scope } from "effect"
import type { EffectPeer } from "../types.js"
import { effectHandler } from "./handlers.js"
import { rejectedOn } from "./rejected.js"

class TooManyRequests extends Data.TaggedError("TooManyRequests")<{ readonly key: string }> {}
class Unavailable extends Data.TaggedError("Unavailable")<{ readonly key: string }> {}

interface Message<M> {
  readonly message: M
  readonly deferred: Deferred.Deferred<number, TooManyRequests | Unavailable>
}

interface Child<M> {
  readonly queue: Queue.Queue<Message<M>, Cause.Done>
  fiber: Fiber.Fiber<void> | undefined
}

/**
 * A keyed level, as a user would write it once and reuse. `body` is a child's
 * life: it takes from its queue and ends when the queue ends (or earlier).
 */
const keyed = Effect.fnUntraced(function*<M>(
  capacity: number,
  body: (queue: Queue.Dequeue<Message<M>, Cause.Done>, key: string) => Effect.Effect<void>
) {
  const outer = yield* Effect.scope
  // the children live in a scope of their own, closed after the graceful stop below
  const scope = yield* Scope.fork(outer)
  const children = new Map<string, Child<M>>()
  let stopping = false

  const spawn = (key: string, child: Child<M>): Effect.Effect<void> =>
    Effect.gen(function*() {
      child.fiber = yield* Effect.forkIn(
        body(child.queue, key).pipe(
          Effect.ensuring(Effect.suspend(() => ended(key, child)))
        ),
        scope
      )
    })

  const ended = (key: string, child: Child<M>): Effect.Effect<void> =>
    Effect.gen(function*() {
      const size = yield* Queue.size(child.queue)
      if (size > 0 && !stopping) return yield* spawn(key, child) // a successor
      if (children.get(key) === child) children.delete(key)
    })

  const send = (key: string, message: M, deferred: Message<M>["deferred"]) =>
    Effect.gen(function*() {
      if (stopping) return yield* new Unavailable({ key })
      let child = children.get(key)
      if (child === undefined) {
        child = { queue: yield* Queue.bounded<Message<M>, Cause.Done>(capacity), fiber: undefined }
        children.set(key, child)
        yield* spawn(key, child)
      }
      if (yield* Queue.isFull(child.queue)) return yield* new TooManyRequests({ key })
      yield* Queue.offer(child.queue, { message, deferred })
    })

  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      stopping = true
      const fibers: Array<Fiber.Fiber<void>> = []
      for (const child of children.values()) {
        yield* Queue.end(child.queue)
        if (child.fiber !== undefined) fibers.push(child.fiber)
      }
      yield* Fiber.awaitAll(fibers)
      yield* Scope.close(scope, Exit.void)
    })
  )
  return send
})

/** Take one message at a time until the queue ends. */
const loop = <M>(
  queue: Queue.Dequeue<Message<M>, Cause.Done>,
  handle: (message: Message<M>) => Effect.Effect<unknown>
): Effect.Effect<void> =>
  Effect.gen(function*() {
    while (true) {
      const message = yield* Queue.take(queue)
      yield* handle(message)
    }
  }).pipe(Effect.catchCause(() => Effect.void))

interface Request {
  readonly n: number
}

const orRejected = rejectedOn("TooManyRequests")

const reply = (m: Message<Request>) => Deferred.succeed(m.deferred, m.message.n)

export const peer: EffectPeer = {
  kind: "effect",
  stopKind: "graceful: a finalizer of its Scope ends every queue and awaits the children",
  make: ({ capacity, child, handler = "succeed" }) =>
    Effect.gen(function*() {
      const run = effectHandler(handler)
      // W1's `sync` and `async` rows: the handler is an Effect to run, then its answer is the reply
      const handle = handler === "succeed"
        ? reply
        : (m: Message<Request>) => Effect.flatMap(run(m.message.n), (n) => Deferred.succeed(m.deferred, n))
      const send = yield* keyed<Request>(capacity, (queue) => {
        switch (child) {
          case "echo":
            return loop(queue, handle)
          case "once":
            return Queue.take(queue).pipe(Effect.flatMap(reply), Effect.asVoid, Effect.catchCause(() => Effect.void))
          case "stuck":
            return loop(queue, () => Effect.never)
        }
      })
      const call = (key: string, n: number) =>
        Effect.gen(function*() {
          const deferred = yield* Deferred.make<number, TooManyRequests | Unavailable>()
          yield* send(key, { n }, deferred)
          return yield* Deferred.await(deferred)
        })
      return {
        call,
        tryCall: (key: string, n: number) => orRejected(call(key, n))
      }
    }),
  makeTree: ({ capacity }) =>
    Effect.gen(function*() {
      interface TreeRequest {
        readonly topic: string
        readonly n: number
      }
      // a group's child forwards each request, with the caller's Deferred, to its own topics
      const send = yield* keyed<TreeRequest>(capacity, (queue) =>
        Effect.scoped(Effect.gen(function*() {
          const topics = yield* keyed<TreeRequest>(capacity, (topicQueue) =>
            loop(topicQueue, (m) => Deferred.succeed(m.deferred, m.message.n)))
          yield* loop(queue, (m) =>
            topics(m.message.topic, m.message, m.deferred).pipe(
              Effect.catch((error) => Deferred.fail(m.deferred, error))
            ))
        })))
      return {
        call: (group, topic, n) =>
          Effect.gen(function*() {
            const deferred = yield* Deferred.make<number, TooManyRequests | Unavailable>()
            yield* send(group, { topic, n }, deferred)
            return yield* Deferred.await(deferred)
          })
      }
    })
}
