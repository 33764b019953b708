/**
 * effect-dispatcher: a keyed, supervised request dispatcher for Effect 4.
 *
 * @since 0.1.0
 */

/**
 * The dispatcher: `make`, `layer`, `runChild`, `send`, `call`, `serve`, `testChild`, ...
 *
 * @since 0.1.0
 */
export * as Dispatcher from "./Dispatcher.js"

/**
 * The errors a dispatcher answers with.
 *
 * @since 0.1.0
 */
export * as DispatchError from "./DispatchError.js"
