import { Deferred, Effect, Exit, type Scope } from "effect"
import { pipeArguments } from "effect/Pipeable"
import type * as Dispatcher from "../Dispatcher.js"
import { ChildFailed, type DispatchError, type InvalidOptions, type TooManyRequests, type Unavailable } from "../DispatchError.js"
import { Core } from "./core.js"
import { awaitStopped, passivate, place, type Placement, stop, Wait } from "./dispatcher.js"
import { isTraced, onDone } from "./effectInternals.js"
import { EnvelopeImpl } from "./envelope.js"
import { ImplementationId, TypeId, variance } from "./handle.js"
import { hotKeys } from "./hotKeys.js"
import { keyOf } from "./keys.js"
import { Mailboxes } from "./mailbox.js"
import { resolve } from "./options.js"
import { waitForRoom } from "./overflow.js"
import * as snapshots from "./snapshots.js"

/**
 * The in-process root: its handle and its implementation in one object, so
 * `Dispatcher.call` reaches the routing with one method call.
 *
 * @internal
 */
export class DispatcherImpl<Req, Res, E> implements Dispatcher.Dispatcher<Req, Res, E>, Dispatcher.Implementation<Req, Res, E> {
  readonly [TypeId]: Dispatcher.Dispatcher.Variance<Req, Res, E> = variance
  readonly [ImplementationId]: Dispatcher.Implementation<Req, Res, E> = this
  constructor(readonly core: Core) {}
  get name(): string {
    return this.core.options.name
  }
  send(request: Req): Effect.Effect<Deferred.Deferred<Res, E | DispatchError>, TooManyRequests | Unavailable> {
    return routed(this.core, request, "Dispatcher.send", sent)
  }
  call(request: Req): Effect.Effect<Res, E | DispatchError> {
    return routed(this.core, request, "Dispatcher.call", answered)
  }
  get shutdown(): Effect.Effect<void> {
    return stop(this.core)
  }
  get awaitStop(): Effect.Effect<void> {
    return awaitStopped(this.core)
  }
  passivate(key: string): Effect.Effect<void> {
    return passivate(this.core, key)
  }
  get stats(): Effect.Effect<Dispatcher.Stats> {
    return Effect.sync(() => snapshots.stats(this.core))
  }
  get children(): Effect.Effect<ReadonlyArray<Dispatcher.ChildInfo>> {
    return Effect.sync(() => snapshots.children(this.core))
  }
  get tree(): Effect.Effect<Dispatcher.Tree> {
    return Effect.sync(() => snapshots.tree(this.core))
  }
  hotKeys(options: Dispatcher.HotKeysOptions): Effect.Effect<ReadonlyArray<Dispatcher.KeyFigures>> {
    return hotKeys(this.core, options)
  }
  pipe() {
    return pipeArguments(this, arguments)
  }
  toJSON(): unknown {
    return { _id: "Dispatcher", name: this.core.options.name, live: this.core.live }
  }
  toString(): string {
    return `Dispatcher(${this.core.options.name})`
  }
  [Symbol.for("nodejs.util.inspect.custom")](): unknown {
    return this.toJSON()
  }
}

/** @internal */
export const make = <Req, Res, E, R>(
  factory: Dispatcher.Factory<Req, Res, E, R>,
  options?: Dispatcher.Options
): Effect.Effect<Dispatcher.Dispatcher<Req, Res, E>, InvalidOptions, R | Scope.Scope> =>
  Effect.gen(function*() {
    const resolved = yield* resolve(options, factory)
    const context = yield* Effect.context<R | Scope.Scope>()
    const core = new Core(resolved, factory, context as any, resolved.name, yield* Mailboxes.make(resolved.capacity))
    // closing the enclosing Scope is the stop; its earlier finalizers run after it
    yield* Effect.addFinalizer(() => stop(core))
    return new DispatcherImpl<Req, Res, E>(core)
  })

/** Place the request, then `finish` with the placement; in a span named `span` when a tracer is installed. */
const routed = <A, E>(
  core: Core,
  request: unknown,
  span: string,
  finish: (core: Core, placement: Placement) => Effect.Effect<A, E>
): Effect.Effect<A, E> =>
  Effect.withFiber((fiber) => {
    const key = keyOf(core.factory, request)
    if (typeof key !== "string") return key
    if (isTraced(fiber)) {
      return Effect.withSpan(
        Effect.suspend(() => finish(core, place(core, key, request, undefined, Infinity))),
        span,
        spanOptions(core, key)
      )
    }
    return finish(core, place(core, key, request, undefined, Infinity))
  })

const spanOptions = (core: Core, key: string) => ({
  kind: "producer" as const,
  attributes: { "dispatcher.name": core.path, "dispatcher.key": key }
})

const sent = (
  core: Core,
  placement: Placement
): Effect.Effect<Deferred.Deferred<any, any>, TooManyRequests | Unavailable> => {
  if (placement instanceof EnvelopeImpl) return Exit.succeed(placement.deferred)
  if (placement instanceof Wait) return Effect.map(waited(core, placement), () => placement.envelope.deferred)
  return placement as Exit.Exit<never, TooManyRequests | Unavailable>
}

const answered = (core: Core, placement: Placement): Effect.Effect<any, any> => {
  // the child may have answered inside the send already: then there is nothing to wait for
  if (placement instanceof EnvelopeImpl) return placement.deferred.effect ?? awaitOrWithdraw(core, placement.deferred)
  if (placement instanceof Wait) {
    const deferred = placement.envelope.deferred
    return Effect.flatMap(waited(core, placement), () => awaitOrWithdraw(core, deferred))
  }
  return placement
}

/**
 * `Deferred.await`, except that a caller interrupted while it waits withdraws
 * its request: the request is answered with the interruption, so a child that
 * has not taken it yet skips it instead of serving nobody.
 */
const awaitOrWithdraw = <A, E>(core: Core, deferred: Deferred.Deferred<A, E>): Effect.Effect<A, E> =>
  Effect.callback<A, E>((resume) => {
    if (deferred.effect) return resume(deferred.effect)
    const stopWaiting = onDone(deferred, resume)
    return Effect.sync(() => {
      stopWaiting()
      if (Deferred.doneUnsafe(deferred, withdrawn)) core.withdrawn++
    })
  })

const withdrawn = Exit.interrupt()

/** A sender waited for room: accepted, refused, or answered (the key gave up meanwhile). */
const waited = (core: Core, wait: Wait): Effect.Effect<void, TooManyRequests | Unavailable> =>
  Effect.flatMap(waitForRoom(core, wait), (exit) => {
    if (exit._tag === "Success") return Exit.void
    const error = exit.cause.reasons[0]
    if (error?._tag === "Fail" && error.error instanceof ChildFailed) {
      // the key gave up while this sender waited: answered, like every request waiting for it
      Deferred.doneUnsafe(wait.envelope.deferred, exit)
      return Exit.void
    }
    return exit as Exit.Exit<never, TooManyRequests | Unavailable>
  })
