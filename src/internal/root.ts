import { Deferred, Effect, Exit, type Fiber, type Scope } from "effect"
import { pipeArguments } from "effect/Pipeable"
import type * as Dispatcher from "../Dispatcher.js"
import { ChildFailed, type DispatchError, type InvalidOptions, type TooManyRequests, type Unavailable } from "../DispatchError.js"
import { Core, place, type Placement, stop } from "./dispatcher.js"
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
export const isDispatcher = (u: unknown): u is Dispatcher.Dispatcher<unknown, unknown, unknown> =>
  typeof u === "object" && u !== null && TypeId in u

/** @internal */
export const make = <Req, Res, E, R>(
  factory: Dispatcher.Factory<Req, Res, E, R>,
  options?: Dispatcher.Options
): Effect.Effect<Dispatcher.Dispatcher<Req, Res, E>, InvalidOptions, R | Scope.Scope> =>
  Effect.gen(function*() {
    const resolved = yield* resolve(options, factory)
    const context = yield* Effect.context<R | Scope.Scope>()
    const core = new Core(resolved, factory, context as any, resolved.name, yield* Mailboxes.make(resolved.capacity, resolved.overflowWait !== undefined))
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
 * Route in the caller's fiber: key, registry, spawn if needed, offer. A new
 * key's mailbox is made first, outside the one synchronous placing step.
 *
 * @internal
 */
export const send = <Req, Res, E>(
  self: Dispatcher.Dispatcher<Req, Res, E>,
  request: Req
): Effect.Effect<Deferred.Deferred<Res, E | DispatchError>, TooManyRequests | Unavailable> =>
  Effect.withFiber((fiber) => {
    const core = coreOf(self)
    const key = keyOf(core.factory, request)
    if (typeof key !== "string") return key
    const sent = sendKeyed(core, key, request)
    return traced(fiber) ? Effect.withSpan(sent, "Dispatcher.send", spanOptions(core, key)) : sent
  })

/**
 * `send`, then wait for the answer; one span covers both.
 *
 * @internal
 */
export const call = <Req, Res, E>(
  self: Dispatcher.Dispatcher<Req, Res, E>,
  request: Req
): Effect.Effect<Res, E | DispatchError> =>
  Effect.withFiber((fiber) => {
    const core = coreOf(self)
    const key = keyOf(core.factory, request)
    if (typeof key !== "string") return key
    const called = Effect.flatMap(sendKeyed(core, key, request), awaitAnswer)
    return traced(fiber) ? Effect.withSpan(called, "Dispatcher.call", spanOptions(core, key)) : called
  })

const awaitAnswer = <A, E>(deferred: Deferred.Deferred<A, E>): Effect.Effect<A, E> =>
  // already answered (a child that ran inside the send): no need to suspend
  deferred.effect ?? Deferred.await(deferred)

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

const sendKeyed = (
  core: Core,
  key: string,
  request: unknown
): Effect.Effect<Deferred.Deferred<any, any>, TooManyRequests | Unavailable> =>
  settle(core, place(core, key, request, undefined, Infinity))

const settle = (
  core: Core,
  placement: Placement
): Effect.Effect<Deferred.Deferred<any, any>, TooManyRequests | Unavailable> => {
  switch (placement._tag) {
    case "Accepted":
      return Exit.succeed(placement.envelope.deferred)
    case "Rejected":
      return placement.exit as Exit.Exit<never, TooManyRequests | Unavailable>
    case "Wait":
      return Effect.flatMap(waitForRoom(core, placement), (exit) => {
        if (exit._tag === "Success") return Exit.succeed(placement.envelope.deferred)
        const error = exit.cause.reasons[0]
        if (error?._tag === "Fail" && error.error instanceof ChildFailed) {
          // the key gave up while this sender waited: answered, like every request waiting for it
          Deferred.doneUnsafe(placement.envelope.deferred, exit)
          return Exit.succeed(placement.envelope.deferred)
        }
        return exit as Exit.Exit<never, TooManyRequests | Unavailable>
      })
  }
}
