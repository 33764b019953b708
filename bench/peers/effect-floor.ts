/**
 * effect-floor: the least Effect code that moves a request to a per-key fiber
 * and back. A Map of key -> `Queue.bounded`, a fiber per key forked into the
 * Scope, a `Deferred` per call made with `Deferred.makeUnsafe`, offered with
 * `Queue.offerUnsafe` and answered with `Deferred.doneUnsafe`. No overflow
 * answer, no successor, no graceful stop (closing the Scope interrupts the
 * children). Not a dispatcher: the cost of Effect's own primitives.
 */
import { Deferred, Effect, Exit, Queue, type Scope } from "effect"
import type { EffectPeer, Handler } from "../types.js"
import { effectHandler } from "./handlers.js"

interface Message {
  readonly n: number
  readonly deferred: Deferred.Deferred<number>
}

type Mailbox = Queue.Queue<Message>

const answer = (message: Message) => Deferred.doneUnsafe(message.deferred, Exit.succeed(message.n))

/** A keyed level: route to the key's fiber, forking it on first use. */
const keyed = <M>(
  scope: Scope.Scope,
  capacity: number,
  body: (mailbox: Queue.Queue<M>, key: string) => Effect.Effect<unknown>,
  forget?: Map<string, Queue.Queue<M>>
) => {
  const mailboxes = forget ?? new Map<string, Queue.Queue<M>>()
  return (key: string, message: M): Effect.Effect<void> => {
    const mailbox = mailboxes.get(key)
    if (mailbox !== undefined) {
      Queue.offerUnsafe(mailbox, message)
      return Effect.void
    }
    return Effect.flatMap(Queue.bounded<M>(capacity), (fresh) => {
      mailboxes.set(key, fresh)
      Queue.offerUnsafe(fresh, message)
      return Effect.asVoid(Effect.forkIn(body(fresh, key), scope))
    })
  }
}

const echoLoop = (mailbox: Mailbox) => Effect.forever(Effect.map(Queue.take(mailbox), answer))

/** The echo loop with a handler that is an Effect to run (W1's `sync` and `async` rows). */
const echoLoopWith = (handler: Handler) => {
  const run = effectHandler(handler)
  return (mailbox: Mailbox) =>
    Effect.forever(
      Effect.flatMap(
        Queue.take(mailbox),
        (message) => Effect.map(run(message.n), (n) => Deferred.doneUnsafe(message.deferred, Exit.succeed(n)))
      )
    )
}

export const peer: EffectPeer = {
  kind: "effect",
  stopKind: "interrupted: closing the Scope interrupts every child (the floor has no graceful stop)",
  unsupported: { w6: "no overflow answer (by definition of the floor)" },
  make: ({ capacity, child, handler = "succeed" }) =>
    Effect.gen(function*() {
      const scope = yield* Effect.scope
      const mailboxes = new Map<string, Mailbox>()
      const body = child === "echo"
        ? handler === "succeed" ? echoLoop : echoLoopWith(handler)
        : child === "once"
        ? (mailbox: Mailbox, key: string) =>
          Effect.map(Queue.take(mailbox), (message) => {
            mailboxes.delete(key)
            answer(message)
          })
        : (mailbox: Mailbox) => Effect.andThen(Queue.take(mailbox), Effect.never)
      const route = keyed(scope, capacity, body, mailboxes)
      const call = (key: string, n: number) =>
        Effect.suspend(() => {
          const deferred = Deferred.makeUnsafe<number>()
          return Effect.andThen(route(key, { n, deferred }), Deferred.await(deferred))
        })
      return { call, tryCall: call }
    }),
  makeTree: ({ capacity }) =>
    Effect.gen(function*() {
      const scope = yield* Effect.scope
      interface TreeMessage {
        readonly topic: string
        readonly n: number
        readonly deferred: Deferred.Deferred<number>
      }
      // a group's fiber routes each message into its own topics' fibers
      const groupLoop = (mailbox: Queue.Queue<TreeMessage>) => {
        const route = keyed(scope, capacity, echoLoop)
        return Effect.forever(Effect.flatMap(Queue.take(mailbox), (message) => route(message.topic, message)))
      }
      const route = keyed(scope, capacity, groupLoop)
      return {
        call: (group, topic, n) =>
          Effect.suspend(() => {
            const deferred = Deferred.makeUnsafe<number>()
            return Effect.andThen(route(group, { topic, n, deferred }), Deferred.await(deferred))
          })
      }
    })
}
