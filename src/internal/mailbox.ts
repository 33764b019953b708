import type { Cause, Queue } from "effect"
import type { EnvelopeImpl } from "./envelope.js"

/**
 * A child's mailbox: a bounded `Queue` of envelopes, ended with `Cause.Done`.
 * Made synchronously by a dispatcher's `QueueMaker` (see `effectInternals`).
 *
 * @internal
 */
export type Mailbox = Queue.Queue<EnvelopeImpl<any, any, any>, Cause.Done>

export { QueueMaker as Mailboxes } from "./effectInternals.js"
