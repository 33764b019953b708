/**
 * What the inspector sends: one snapshot of a dispatcher tree, bounded (the
 * top keys only, at most `maxDispatchers` levels listed, the last
 * `maxFailures` failures), as a Schema so a client can decode it.
 */
import { Schema } from "effect"

/** @internal */
export const maxDispatchers = 100

/** @internal */
export const maxFailures = 20

/** @internal */
export const maxKeyLength = 200

/** @internal */
export const maxCauseLength = 2_000

const Rejected = Schema.Struct({
  tooManyRequests: Schema.Number,
  unavailable: Schema.Number,
  requestTimeout: Schema.Number,
  childFailed: Schema.Number
})

/** @internal */
export const KeyState = Schema.Struct({
  key: Schema.String,
  path: Schema.String,
  depth: Schema.Number,
  oldest: Schema.Number,
  rate: Schema.Number,
  failures: Schema.Number,
  restarts: Schema.Number,
  stuck: Schema.Boolean
})

/** @internal */
export const LevelState = Schema.Struct({
  depth: Schema.Number,
  names: Schema.Array(Schema.String),
  dispatchers: Schema.Number,
  keys: Schema.Number,
  live: Schema.Number,
  accepted: Schema.Number,
  rate: Schema.Number,
  failures: Schema.Number,
  withdrawn: Schema.Number,
  rejected: Rejected
})

/** @internal */
export const DispatcherState = Schema.Struct({
  path: Schema.String,
  name: Schema.String,
  depth: Schema.Number,
  keys: Schema.Number,
  live: Schema.Number,
  accepted: Schema.Number,
  rate: Schema.Number,
  failures: Schema.Number,
  rejected: Rejected
})

/** @internal */
export const FailureState = Schema.Struct({
  at: Schema.Number,
  path: Schema.String,
  key: Schema.String,
  incarnation: Schema.Number,
  gaveUp: Schema.Boolean,
  cause: Schema.String
})

/** @internal */
export const StateSchema = Schema.Struct({
  name: Schema.String,
  status: Schema.Literals(["running", "stopping", "stopped"]),
  at: Schema.Number,
  interval: Schema.Number,
  top: Schema.Number,
  stuckAfter: Schema.NullOr(Schema.Number),
  keys: Schema.Number,
  levels: Schema.Array(LevelState),
  dispatchers: Schema.Array(DispatcherState),
  omittedDispatchers: Schema.Number,
  hot: Schema.Struct({
    depth: Schema.Array(KeyState),
    oldest: Schema.Array(KeyState),
    rate: Schema.Array(KeyState),
    failures: Schema.Array(KeyState)
  }),
  stuck: Schema.Array(KeyState),
  failures: Schema.Array(FailureState)
})

/** @internal */
export type StateType = typeof StateSchema.Type
