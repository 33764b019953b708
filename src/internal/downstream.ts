import { Cause, Deferred, Effect, Exit, Fiber, Queue } from "effect"
import type * as Dispatcher from "../Dispatcher.js"
import type { InvalidOptions } from "../DispatchError.js"
import { answersEverything, Core, entryOf, place, type Placement, stop, Wait } from "./dispatcher.js"
import { EnvelopeImpl, isAnswered } from "./envelope.js"
import { keyOf } from "./keys.js"
import { Mailboxes } from "./mailbox.js"
import { resolve } from "./options.js"
import { waitForRoom } from "./overflow.js"

/**
 * A dispatcher under a dispatcher (Go: `Spawn` with `WithChildSpec`). One
 * fiber takes batches from the parent's mailbox and routes each request into
 * this level's children; the caller's Deferred travels down unchanged, so a
 * request refused here is answered straight to the original caller.
 *
 * @internal
 */
export const runChild = <Req, Res, E, R>(
  spec: Dispatcher.ChildSpec<Req, Res, E>,
  factory: Dispatcher.Factory<Req, Res, E, R>,
  options?: Dispatcher.Options
): Effect.Effect<void, InvalidOptions, R> =>
  Effect.gen(function*() {
    const resolved = yield* resolve(options, factory)
    const context = yield* Effect.context<R>()
    const parent = entryOf(spec)
    const path = `${parent === undefined ? "test" : parent.core.path}/${spec.key}/${resolved.name}`
    const core = new Core(resolved, factory, context as any, path, yield* Mailboxes.make(resolved.capacity, resolved.overflowWait !== undefined))
    answersEverything(spec)
    const input = spec.requests as Queue.Dequeue<EnvelopeImpl<Req, Res, E>, Cause.Done>

    const router = yield* Effect.forkChild(route(core, input), { startImmediately: true })
    // the last child is gone and nothing waits: this level is done
    core.onIdle = () => {
      if (input.messages.length === 0) router.interruptUnsafe()
    }
    yield* Fiber.await(router).pipe(Effect.onExit(() => stop(core)))
  })

const route = <Req, Res, E>(core: Core, input: Queue.Dequeue<EnvelopeImpl<Req, Res, E>, Cause.Done>) =>
  Effect.gen(function*() {
    let routed = false
    for (;;) {
      if (routed && core.registry.size === 0 && input.messages.length === 0) return
      const batch = yield* Queue.takeAll(input).pipe(Effect.catchCause(() => Effect.succeed(undefined)))
      if (batch === undefined) return
      routed = true
      core.routing = true
      for (const envelope of batch) {
        if (isAnswered(envelope)) continue
        const key = keyOf(core.factory, envelope.request)
        if (typeof key !== "string") {
          Deferred.doneUnsafe(envelope.deferred, key)
          continue
        }
        settle(core, envelope, place(core, key, envelope.request, envelope.deferred, envelope.deadline))
      }
      core.routing = false
    }
  })

const settle = (core: Core, envelope: EnvelopeImpl<any, any, any>, placement: Placement): void => {
  if (placement instanceof EnvelopeImpl) return
  if (placement instanceof Wait) {
    // a blocked key must not hold up the others: wait in a fiber of its own
    Effect.runForkWith(core.context)(
      Effect.flatMap(waitForRoom(core, placement), (exit) =>
        Effect.sync(() => {
          if (exit._tag === "Failure" && !isAnswered(envelope)) {
            Deferred.doneUnsafe(envelope.deferred, exit as Exit.Exit<never, any>)
          }
        }))
    )
    return
  }
  // refused, counted by `place` at this level: answered to the original caller
  if (!isAnswered(envelope)) Deferred.doneUnsafe(envelope.deferred, placement)
}
