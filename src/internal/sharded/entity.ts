/**
 * A sharded entity as `Sharded.entity` makes it: only a description (name,
 * Schemas, key, delivery). The engine's own `Entity` is made from it when a
 * layer is built, so defining entities loads no cluster code.
 */
import type { Schema } from "effect"
import { pipeArguments } from "effect/Pipeable"
import type * as Dispatcher from "../../Dispatcher.js"

/** @internal */
export const TypeId = "~effect-dispatcher/Sharded/Entity" as const

/** @internal */
export class EntityImpl<Req, Res, E> {
  readonly [TypeId] = TypeId
  /**
   * the engine's entity, made once by the first layer that needs it: one whose
   * runners' engine makes a span per request, and one whose runners' makes none
   */
  readonly engines: { traced?: unknown; untraced?: unknown } = {}
  /** the roots of this entity's runners in this process, for the handle's stats and children */
  readonly locals = new Set<Dispatcher.Dispatcher<Req, Res, E>>()

  constructor(
    readonly name: string,
    readonly request: Schema.Codec<Req, unknown>,
    readonly success: Schema.Codec<Res, unknown>,
    readonly error: Schema.Codec<E, unknown>,
    readonly keyOf: (request: Req) => Dispatcher.Key,
    readonly persisted: boolean
  ) {}

  pipe() {
    return pipeArguments(this, arguments)
  }
  toJSON(): unknown {
    return { _id: "Sharded.Entity", name: this.name, persisted: this.persisted }
  }
  toString(): string {
    return `Sharded.Entity(${this.name})`
  }
}

/**
 * Stable request ids, by the request object a runner decoded: the engine's
 * snowflake for the message, the same on every delivery of a persisted request.
 *
 * @internal
 */
export const requestIds = new WeakMap<object, bigint>()
