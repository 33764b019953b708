/**
 * The one error the sharded mode answers with that an in-process dispatcher
 * never does: what crossed the wire did not fit its Schema. It lives in the
 * core's error module (`DispatchError.SchemaMismatch`), so the same service
 * tag, typed `Dispatcher.Dispatcher<Req, Res, E>`, fits `Dispatcher.layer` and
 * `Sharded.layer` alike; re-exported here for the machinery.
 */
export { SchemaMismatch } from "../../DispatchError.js"
