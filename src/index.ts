/**
 * effect-dispatcher: a keyed, supervised request dispatcher for Effect 4.
 *
 * @module effect-dispatcher
 * @since 0.1.0
 */

/**
 * The dispatcher: `make`, `layer`, `runChild`, `send`, `call`, `serve`, `testChild`, ...
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * const program = Effect.gen(function*() {
 *   const d = yield* Dispatcher.make({
 *     keyOf: (s: string) => s,
 *     spawn: (child) => Dispatcher.serve(child, (s: string) => Effect.succeed(s.length))
 *   })
 *   return yield* Dispatcher.call(d, "four") // 4
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category modules
 */
export * as Dispatcher from "./Dispatcher.js"

/**
 * The errors a dispatcher answers with.
 *
 * @example
 * ```ts
 * import { DispatchError } from "effect-dispatcher"
 *
 * const full = new DispatchError.TooManyRequests({ key: "k", capacity: 64 })
 * ```
 *
 * @since 0.1.0
 * @category modules
 */
export * as DispatchError from "./DispatchError.js"
