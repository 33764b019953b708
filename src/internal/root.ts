import { Deferred, Effect, Exit, type Fiber, type Scope } from "effect"
import { pipeArguments } from "effect/Pipeable"
import type * as Dispatcher from "../Dispatcher.js"
import { ChildFailed, type DispatchError, type InvalidOptions, type TooManyRequests, type Unavailable } from "../DispatchError.js"
import { Core } from "./core.js"
import { place, type Placement, stop, Wait } from "./dispatcher.js"
import { EnvelopeImpl } from "./envelope.js"
import { keyOf } from "./keys.js"
import { Mailboxes } from "./mailbox.js"
import { resolve } from "./options.js"
import { waitForRoom } from "./overflow.js"

/** @internal */
export const TypeId = "~effect-dispatcher/Dispatcher" as const

/**
 * The opaque handle: a root dispatcher's core.
 *
 * @internal
 */
export class DispatcherImpl<Req, Res, E> implements Dispatcher.Dispatcher<Req, Res, E> {
  readonly [TypeId]: Dispatcher.Dispatcher.Variance<Req, Res, E> = variance
  constructor(readonly core: Core) {}
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

const variance = {
  _Req: (_: any) => _,
  _Res: (_: never) => _,
  _E: (_: never) => _
} as any

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

/** @internal */
export const coreOf = (self: Dispatcher.Dispatcher<any, any, any>): Core => {
  if (!(self instanceof DispatcherImpl)) {
    throw new TypeError(`expected a Dispatcher made by Dispatcher.make or Dispatcher.layer, got ${String(self)}`)
  }
  return self.core
}

/**
 * Route in the caller's fiber: key, registry, spawn or wake the child, offer,
 * all in one synchronous step.
 *
 * @internal
 */
export const send = <Req, Res, E>(
  self: Dispatcher.Dispatcher<Req, Res, E>,
  request: Req
): Effect.Effect<Deferred.Deferred<Res, E | DispatchError>, TooManyRequests | Unavailable> =>
  routed(self, request, "Dispatcher.send", sent)

/**
 * `send`, then wait for the answer; one span covers both.
 *
 * @internal
 */
export const call = <Req, Res, E>(
  self: Dispatcher.Dispatcher<Req, Res, E>,
  request: Req
): Effect.Effect<Res, E | DispatchError> => routed(self, request, "Dispatcher.call", answered)

/** Place the request, then `finish` with the placement; in a span named `span` when a tracer is installed. */
const routed = <A, E>(
  self: Dispatcher.Dispatcher<any, any, any>,
  request: unknown,
  span: string,
  finish: (core: Core, placement: Placement) => Effect.Effect<A, E>
): Effect.Effect<A, E> =>
  Effect.withFiber((fiber) => {
    const core = coreOf(self)
    const key = keyOf(core.factory, request)
    if (typeof key !== "string") return key
    if (traced(fiber)) {
      return Effect.withSpan(
        Effect.suspend(() => finish(core, place(core, key, request, undefined, Infinity))),
        span,
        spanOptions(core, key)
      )
    }
    return finish(core, place(core, key, request, undefined, Infinity))
  })

/**
 * Spans are made when a tracer is installed: the native default records
 * nothing anyone can read, so a send without one costs no span.
 */
const traced = (fiber: Fiber.Fiber<unknown, unknown>): boolean =>
  fiber.cache.tracerEnabled && fiber.cache.tracer !== undefined

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
    ;(deferred.resumes ??= []).push(resume)
    return Effect.sync(() => {
      const resumes = deferred.resumes
      if (resumes !== undefined) {
        const index = resumes.indexOf(resume)
        if (index >= 0) resumes.splice(index, 1)
      }
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
