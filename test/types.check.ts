/**
 * Type-level tests: the misuses a new user meets first are type errors, and the
 * right uses infer what they should. Checked by `npm run typecheck` (tsc), never
 * run: every `@ts-expect-error` line below must be an error, or tsc fails with
 * "Unused '@ts-expect-error' directive". Each such line holds one misuse only,
 * so it cannot pass for another reason.
 */
import { expectTypeOf } from "@effect/vitest"
import { Context, Data, Effect, type Layer, Schema } from "effect"
import type { Sharding } from "effect/cluster/Sharding"
import type { HttpRouter } from "effect/http"
import { Dispatcher, type DispatchError, Inspector, Sharded } from "effect-dispatcher"

interface Deposit {
  readonly user: string
  readonly amount: number
}

class Overdrawn extends Data.TaggedError("Overdrawn")<{ readonly user: string }> {}
class Frozen extends Data.TaggedError("Frozen")<{ readonly user: string }> {}

class Ledger extends Context.Service<Ledger, Dispatcher.Dispatcher<Deposit, number, Overdrawn>>()("types/Ledger") {}
class Clock extends Context.Service<Clock, { readonly now: () => number }>()("types/Clock") {}

const ledger: Dispatcher.Factory<Deposit, number, Overdrawn> = {
  keyOf: (deposit) => deposit.user,
  spawn: (child) =>
    Dispatcher.serve(child, (deposit) =>
      deposit.amount < 0 ? Effect.fail(new Overdrawn({ user: deposit.user })) : Effect.succeed(deposit.amount))
}

declare const d: Dispatcher.Dispatcher<Deposit, number, Overdrawn>

// --- the right uses infer what they should -----------------------------------------------------

expectTypeOf(Dispatcher.call(d, { user: "ada", amount: 1 })).toEqualTypeOf<
  Effect.Effect<number, Overdrawn | DispatchError.DispatchError>
>()
expectTypeOf(d.pipe(Dispatcher.call({ user: "ada", amount: 1 }))).toEqualTypeOf<
  Effect.Effect<number, Overdrawn | DispatchError.DispatchError>
>()
expectTypeOf(Dispatcher.layer(Ledger, ledger)).toEqualTypeOf<
  Layer.Layer<Ledger, DispatchError.InvalidOptions, never>
>()
// one tag, typed `Dispatcher<Req, Res, E>`, for either Layer: in process or sharded (no extra error in the type)
class Declined extends Schema.TaggedError<Declined>()("Declined", { user: Schema.String }) {}
class Payments extends Context.Service<Payments, Dispatcher.Dispatcher<Deposit, number, Declined>>()("types/Payments") {}
const PaymentsEntity = Sharded.entity("Payments", {
  request: Schema.Struct({ user: Schema.String, amount: Schema.Number }),
  success: Schema.Number,
  error: Declined,
  keyOf: (deposit) => deposit.user
})
expectTypeOf(Sharded.layer(Payments, PaymentsEntity)).toEqualTypeOf<Layer.Layer<Payments, never, Sharding>>()
expectTypeOf(
  Dispatcher.layer(Payments, {
    keyOf: (deposit: Deposit) => deposit.user,
    spawn: (child) => Dispatcher.serve(child, (deposit) => Effect.succeed(deposit.amount))
  })
).toEqualTypeOf<Layer.Layer<Payments, DispatchError.InvalidOptions, never>>()
// SchemaMismatch is one of the DispatchErrors, so a call on either handle may be answered with it
expectTypeOf<DispatchError.SchemaMismatch>().toExtend<DispatchError.DispatchError>()
// @ts-expect-error: an entity whose error is not the tag's
Sharded.layer(Ledger, PaymentsEntity)

// the handle's only keys are the public type id and `pipe`: type errors name `[TypeId]`, which
// `Dispatcher.TypeId` is, never an internal module's
expectTypeOf<keyof Dispatcher.Dispatcher<Deposit>>().toEqualTypeOf<Dispatcher.TypeId | "pipe">()

// --- a wrong request type to `call` --------------------------------------------------------------

// @ts-expect-error: a string is not a Deposit
Dispatcher.call(d, "ada")
// @ts-expect-error: a Deposit lacks `amount`
Dispatcher.call(d, { user: "ada" })
// @ts-expect-error: the same, data-last
d.pipe(Dispatcher.call("ada"))
// @ts-expect-error: not a dispatcher at all (Property '[TypeId]' is missing)
Dispatcher.call({ pipe: () => undefined }, { user: "ada", amount: 1 })

// --- a handler whose error is not in the dispatcher's error type ---------------------------------

export const wrongError: Dispatcher.Factory<Deposit, number, Overdrawn> = {
  keyOf: (deposit) => deposit.user,
  // @ts-expect-error: Frozen is not Overdrawn
  spawn: (child) => Dispatcher.serve(child, (deposit) => Effect.fail(new Frozen({ user: deposit.user })))
}

// through the tag: the tag's dispatcher may fail Overdrawn only
Dispatcher.layer(Ledger, {
  keyOf: (deposit) => deposit.user,
  // @ts-expect-error: Frozen is not Overdrawn
  spawn: (child) => Dispatcher.serve(child, (deposit) => Effect.fail(new Frozen({ user: deposit.user })))
})

// --- `layer` with a tag of the wrong service type ----------------------------------------------

// @ts-expect-error: Clock's service is not a dispatcher
Dispatcher.layer(Clock, ledger)

// @ts-expect-error: Ledger's dispatcher takes Deposits, not strings
Dispatcher.layer(Ledger, { keyOf: (s: string) => s, spawn: (child) => Dispatcher.serve(child, () => Effect.succeed(1)) })

// --- hot keys and the inspector ------------------------------------------------------------------

expectTypeOf(Dispatcher.hotKeys(d, { top: 5, by: "oldest" })).toEqualTypeOf<
  Effect.Effect<ReadonlyArray<Dispatcher.KeyFigures>>
>()
expectTypeOf(d.pipe(Dispatcher.hotKeys({ top: 5, by: "rate", window: "10 seconds" }))).toEqualTypeOf<
  Effect.Effect<ReadonlyArray<Dispatcher.KeyFigures>>
>()
// @ts-expect-error: not a measure
Dispatcher.hotKeys(d, { top: 5, by: "size" })
// @ts-expect-error: `top` is required
Dispatcher.hotKeys(d, { by: "depth" })

// a handle needs only the router; a tag needs its service too
expectTypeOf(Inspector.layer(d)).toEqualTypeOf<Layer.Layer<never, Dispatcher.InvalidOptions, HttpRouter.HttpRouter>>()
expectTypeOf(Inspector.layer(Ledger, { prefix: "/_inspect" })).toEqualTypeOf<
  Layer.Layer<never, Dispatcher.InvalidOptions, HttpRouter.HttpRouter | Ledger>
>()
// @ts-expect-error: Clock's service is not a dispatcher
Inspector.layer(Clock)
// @ts-expect-error: redact maps a key to text
Inspector.layer(d, { redact: (key: string) => key.length })
