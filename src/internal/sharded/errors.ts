/**
 * The one error the sharded mode adds to the dispatcher's: what crossed the
 * wire did not fit its Schema. Pure Effect: loaded with the package.
 */
import { Schema } from "effect"

/**
 * A request or its answer did not fit its Schema between processes: the
 * caller's request did not encode, a runner could not decode it (a runner
 * deployed with another request Schema, say), or the answer did not encode or
 * decode. The message says which, in the Schema's words.
 *
 * @internal
 */
export class SchemaMismatch extends Schema.TaggedError<SchemaMismatch>()("SchemaMismatch", {
  key: Schema.String,
  message: Schema.String
}) {}
