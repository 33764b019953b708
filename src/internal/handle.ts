/**
 * What every dispatcher handle is: the type id users see in type errors, and
 * the implementation it carries. `Dispatcher.send`, `call`, `stats`... ask the
 * handle, so an in-process root and a sharded one answer the same functions.
 */
import { Effect } from "effect"
import { pipeArguments } from "effect/Pipeable"
import type * as Dispatcher from "../Dispatcher.js"

/** @internal */
export const TypeId = "~effect-dispatcher/Dispatcher" as const

/** @internal */
export const ImplementationId = "~effect-dispatcher/Implementation" as const

/** @internal */
export const variance = {
  _Req: (_: any) => _,
  _Res: (_: never) => _,
  _E: (_: never) => _
} as any

const describe = (u: unknown): string => {
  try {
    return String(u)
  } catch {
    return Object.prototype.toString.call(u)
  }
}

/**
 * The handle's implementation, or `undefined` when `self` is not a handle at
 * all (a mistyped argument at run time): see `notAHandle`.
 *
 * @internal
 */
export const implementationOf = (self: unknown): Dispatcher.Implementation<any, any, any> | undefined =>
  self !== null && typeof self === "object"
    ? (self as Record<string, Dispatcher.Implementation<any, any, any> | undefined>)[ImplementationId]
    : undefined

/**
 * The defect for something given as a dispatcher that is not one.
 *
 * @internal
 */
export const notAHandle = (self: unknown): Effect.Effect<never> =>
  Effect.die(new TypeError(`expected a Dispatcher made by Dispatcher.make or Dispatcher.layer, got ${describe(self)}`))

/**
 * A handle over an implementation written elsewhere (`Dispatcher.fromImplementation`).
 *
 * @internal
 */
export class Handle<Req, Res, E> implements Dispatcher.Dispatcher<Req, Res, E> {
  readonly [TypeId]: Dispatcher.Dispatcher.Variance<Req, Res, E> = variance
  readonly [ImplementationId]: Dispatcher.Implementation<Req, Res, E>
  constructor(implementation: Dispatcher.Implementation<Req, Res, E>) {
    this[ImplementationId] = implementation
  }
  pipe() {
    return pipeArguments(this, arguments)
  }
  toJSON(): unknown {
    return { _id: "Dispatcher", implementation: this[ImplementationId].name }
  }
  toString(): string {
    return `Dispatcher(${this[ImplementationId].name})`
  }
  [Symbol.for("nodejs.util.inspect.custom")](): unknown {
    return this.toJSON()
  }
}
