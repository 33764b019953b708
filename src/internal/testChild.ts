import { type Cause, Deferred, Effect, Exit, Queue } from "effect"
import type * as Dispatcher from "../Dispatcher.js"
import type { TooManyRequests, Unavailable } from "../DispatchError.js"
import { Core } from "./core.js"
import { accepted, envelopeFor, wake } from "./dispatcher.js"
import { ChildSpecImpl, Entry } from "./entry.js"
import type { EnvelopeImpl } from "./envelope.js"
import { Mailboxes } from "./mailbox.js"
import { defaultCapacity, resolve } from "./options.js"

const noFactory: Dispatcher.Factory<any, any, any, never> = {
  keyOf: () => "test",
  spawn: () => Effect.void
}

/**
 * Go's `NewChildSpec4Test`: a mailbox with no dispatcher behind it. Offers are
 * placed as a dispatcher would place them (same envelopes, same refusals), so
 * a child can be tested alone.
 *
 * @internal
 */
export const testChild = <Req, Res = void, E = never>(
  key: Dispatcher.Key = "test",
  capacity: number = defaultCapacity
): Effect.Effect<Dispatcher.TestChild<Req, Res, E>> =>
  Effect.gen(function*() {
    const options = yield* Effect.orDie(resolve({ mailboxCapacity: capacity, name: "test" }))
    if (typeof key !== "string") return yield* Effect.die(new TypeError(`testChild: key must be a string, got ${typeof key}`))
    const context = yield* Effect.context<never>()
    const mailboxes = yield* Mailboxes.make(options.capacity)
    const core = new Core(options, noFactory, context, "test", mailboxes)
    const mailbox = mailboxes.make() as unknown as Queue.Queue<EnvelopeImpl<Req, Res, E>, Cause.Done>
    const entry = new Entry(core, key, mailbox as any)
    const spec = new ChildSpecImpl(key, mailbox, entry) as unknown as Dispatcher.ChildSpec<Req, Res, E>
    const offer = (
      request: Req
    ): Effect.Effect<Deferred.Deferred<Res, E | Dispatcher.DispatchError>, TooManyRequests | Unavailable> =>
      Effect.suspend((): Effect.Effect<Deferred.Deferred<Res, E | Dispatcher.DispatchError>, TooManyRequests | Unavailable> => {
        if (mailbox.state._tag !== "Open") {
          core.unavailable++
          return entry.exitFor("unavailable") as Exit.Exit<never, Unavailable>
        }
        if (mailbox.messages.length >= options.capacity) {
          core.tooManyRequests++
          return entry.exitFor("tooManyRequests") as Exit.Exit<never, TooManyRequests>
        }
        const envelope = envelopeFor(core, entry, request, undefined, Infinity)
        // open with room, checked just above in this same synchronous step: this offer cannot fail
        Queue.offerUnsafe(mailbox, envelope as EnvelopeImpl<Req, Res, E>)
        accepted(core, entry, envelope)
        wake(core, entry)
        return Exit.succeed(envelope.deferred as Deferred.Deferred<Res, E | Dispatcher.DispatchError>)
      })
    const end = Effect.sync(() => {
      Queue.endUnsafe(mailbox)
      wake(core, entry)
    })
    return { spec, offer, end }
  })
