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

/**
 * The same `Factory` across processes, on `effect/cluster` with PostgreSQL:
 * `entity`, `runner`, `layer`, `layerPostgres`. Importing it loads no cluster
 * code: the engine loads when one of its layers is built.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Sharded } from "effect-dispatcher"
 *
 * const Ledger = Sharded.entity("Ledger", {
 *   request: Schema.Struct({ user: Schema.String, amount: Schema.Number }),
 *   success: Schema.Number,
 *   keyOf: (deposit) => deposit.user
 * })
 * ```
 *
 * @since 0.1.0
 * @category modules
 */
export * as Sharded from "./Sharded.js"

/**
 * A live, read-only inspector page for a dispatcher tree on your own HTTP
 * router: `layer` (the page, `/state` JSON, `/events` Server-Sent Events),
 * `authorizeBearer`. Importing it loads no HTTP module: the routes load when
 * its layer is built.
 *
 * @example
 * ```ts
 * import { Dispatcher, Inspector } from "effect-dispatcher"
 *
 * declare const groups: Dispatcher.Dispatcher<{ readonly group: string }, string>
 *
 * const InspectorRoutes = Inspector.layer(groups, { prefix: "/_inspect", redact: (key) => key.slice(0, 2) + "…" })
 * ```
 *
 * @since 0.1.0
 * @category modules
 */
export * as Inspector from "./Inspector.js"
