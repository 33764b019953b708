/**
 * The sharded mode's machinery on `effect/cluster`. Loaded on demand (a
 * dynamic `import()` in `Sharded`'s layers), never by the package index: a
 * user of the in-process dispatcher loads no cluster code.
 *
 * The design, in short:
 *
 * - **One root per runner.** Each runner process runs the user's unchanged
 *   `Factory` under one in-process `Dispatcher.make` root, with the runner's
 *   options (`mailboxCapacity`, `maxChildren` per runner, `requestTimeout`,
 *   `restart`...): every in-process semantic holds on the runner as it is.
 * - **The engine's entity is a thin forwarder.** One RPC, `Call`, whose handler
 *   sends the request to the root and answers with what the child answers. It
 *   runs with unbounded concurrency and mailbox (the root's mailbox is the
 *   bound, answered `TooManyRequests` at once), `disableFatalDefects` (a
 *   handler defect answers its request; the engine never replays it: restarts
 *   and `ChildFailed` are the root's), and never fails with a defect of its own.
 * - **A key's child lives only while this runner holds the key's shard.** When
 *   the engine ends the key's entity here (its shard moved, the runner stops,
 *   the entity idled out), the entity's Scope passivates the key's child and
 *   waits for its end, so the engine releases the shard's lock only after the
 *   child is gone: no second child starts elsewhere meanwhile. And where the
 *   engine learns of a lost lock too late (a runner frozen past
 *   `shardLockExpiration`, then resumed), the runner's lease (see `lease.ts`)
 *   fences the shard on its own clock: new requests are refused, requests in
 *   flight are answered `Unavailable` (a child skips answered requests; with a
 *   `requestTimeout` a running handler is interrupted too), and the keys'
 *   children are passivated.
 */
import { Cause, Clock, Context, Deferred, Duration, Effect, Exit, Option, Schema, SchemaIssue, Scope } from "effect"
import * as ClusterEntity from "effect/cluster/Entity"
import type { EntityAddress } from "effect/cluster/EntityAddress"
import * as ClusterSchema from "effect/cluster/ClusterSchema"
import * as Sharding from "effect/cluster/Sharding"
import { ShardingConfig } from "effect/cluster/ShardingConfig"
import * as Rpc from "effect/rpc/Rpc"
import * as Dispatcher from "../../Dispatcher.js"
import { ChildFailed, RequestTimeout, TooManyRequests, Unavailable } from "../../DispatchError.js"
import { type EntityImpl, requestIds } from "./entity.js"
import { Held, type Lease, ShardLease } from "./lease.js"
import { CurrentProbe, Governed, Probe } from "./probe.js"
import { SchemaMismatch } from "./errors.js"
import { isTraced } from "../effectInternals.js"
import { settleScopePretenuring } from "./pretenuring.js"
import { keepsServerSpans } from "./tracing.js"

/** The one RPC of every sharded entity. */
const Call = "Call"

/** What the engine's entity for a sharded entity is: one RPC, typed loosely here (the public types are `Sharded`'s). */
type EngineEntity = ClusterEntity.Entity<string, any>

/**
 * The user's own error `E`, encoded by its Schema, as it crosses the wire
 * among the dispatcher's errors.
 */
class UserError extends Schema.TaggedError<UserError>()("effect-dispatcher/Sharded/UserError", {
  encoded: Schema.String
}) {}

/**
 * The engine's entity, made once per sharded entity. Its one RPC carries the
 * request and the answer already encoded, as JSON text: the caller and the
 * runner encode and decode them with the entity's Schemas themselves, so a
 * value that does not fit is a typed `SchemaMismatch` naming the problem, on
 * either side, never a defect in the engine. Text, not `Schema.Unknown`: the
 * engine's binary codec writes an unknown value with a self-describing layout
 * that cost a runner 3 µs a call to read (profiled, bench:sharded), against a
 * copy of the bytes for a string. Its errors are the dispatcher's own, and the
 * user's `E` encoded (`UserError`).
 */
export const engineEntity = (entity: EntityImpl<any, any, any>, serverSpans = true): EngineEntity => {
  const cached = serverSpans ? entity.engines.traced : entity.engines.untraced
  if (cached !== undefined) return cached as EngineEntity
  const rpc = Rpc.make(Call, {
    payload: Schema.String,
    success: Schema.String,
    error: Schema.Union([TooManyRequests, Unavailable, RequestTimeout, ChildFailed, SchemaMismatch, UserError])
    // the caller's span is `Sharded.call`, which the engine propagates; the runner's, where it has a tracer (`tracing.ts`)
  }).annotate(Rpc.TracingEnabled, serverSpans ? "server" : "none")
  const made = ClusterEntity.make(entity.name, [entity.persisted ? rpc.annotate(ClusterSchema.Persisted, true) : rpc])
  if (serverSpans) entity.engines.traced = made
  else entity.engines.untraced = made
  return made
}

type Codec<A> = (u: unknown) => Exit.Exit<A, Schema.SchemaError>

/** What JSON could not take, or give, as a Schema's failure. */
const notJson = (error: unknown, input: unknown): Exit.Exit<never, Schema.SchemaError> =>
  Exit.fail(new Schema.SchemaError(new SchemaIssue.InvalidValue({ message: `not JSON: ${String(error)}` }, input)))

/**
 * A Schema's encoder, into the wire's text: `undefined` (which JSON has not)
 * as the empty text; what JSON cannot hold (a bigint or a cycle under a
 * `Schema.Unknown`) fails as a Schema would.
 */
const toText = (encode: Codec<unknown>): Codec<string> => (value) => {
  const encoded = encode(value)
  if (encoded._tag === "Failure") return Exit.failCause(encoded.cause)
  if (encoded.value === undefined) return Exit.succeed("")
  try {
    return Exit.succeed(JSON.stringify(encoded.value))
  } catch (error) {
    return notJson(error, encoded.value)
  }
}

/** A Schema's decoder, from the wire's text; text that is not JSON fails as a Schema would. */
const fromText = (decode: Codec<unknown>): Codec<unknown> => (text) => {
  if (typeof text !== "string") {
    return Exit.fail(new Schema.SchemaError(new SchemaIssue.InvalidType(Schema.String.ast, text)))
  }
  if (text === "") return Exit.succeed(undefined)
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    return notJson(error, text)
  }
  return decode(parsed)
}

/** An entity's Schemas as codecs of the wire's text, made once. */
class Codecs {
  readonly encodeRequest: Codec<string>
  readonly decodeRequest: Codec<unknown>
  readonly encodeAnswer: Codec<string>
  readonly decodeAnswer: Codec<unknown>
  readonly encodeError: Codec<string>
  readonly decodeError: Codec<unknown>
  constructor(entity: EntityImpl<any, any, any>) {
    const request = Schema.toCodecJson(entity.request as Schema.Codec<unknown, unknown>)
    const success = Schema.toCodecJson(entity.success as Schema.Codec<unknown, unknown>)
    const error = Schema.toCodecJson(entity.error as Schema.Codec<unknown, unknown>)
    this.encodeRequest = toText(Schema.encodeUnknownExit(request))
    this.decodeRequest = fromText(Schema.decodeUnknownExit(request))
    this.encodeAnswer = toText(Schema.encodeUnknownExit(success))
    this.decodeAnswer = fromText(Schema.decodeUnknownExit(success))
    this.encodeError = toText(Schema.encodeUnknownExit(error))
    this.decodeError = fromText(Schema.decodeUnknownExit(error))
  }
}

/** Where a value did not fit: which side it was on, and what failed where. */
const mismatches = {
  "request at the caller": ["request", "the request did not encode at the caller"],
  "request on the runner": ["request", "the request did not decode on the runner"],
  "answer on the runner": ["answer", "the answer did not encode on the runner"],
  "answer at the caller": ["answer", "the answer did not decode at the caller"],
  "error on the runner": ["answer", "your error did not encode on the runner"],
  "error at the caller": ["answer", "your error did not decode at the caller"]
} as const

/** What did not fit, in the Schema's words. */
const mismatchOf = (
  key: string,
  where: keyof typeof mismatches,
  exit: Exit.Exit<unknown, Schema.SchemaError>
): SchemaMismatch => {
  const error = exit._tag === "Failure" ? Cause.findErrorOption(exit.cause) : Option.none()
  const issue = Option.isSome(error) ? error.value.message : exit._tag === "Failure" ? Cause.pretty(exit.cause) : ""
  const [side, what] = mismatches[where]
  return new SchemaMismatch({ key, side, what: `${what}: ${issue}` })
}

// -----------------------------------------------------------------------------
// The runner
// -----------------------------------------------------------------------------

/** The runner's options beyond the dispatcher's own. */
export interface RunnerExtras {
  readonly idleTimeToLive?: Duration.Input | undefined
}

/** A `ChildFailed` crosses the wire with its cause in words (a `Cause` does not encode). */
const readable = (cause: unknown): string =>
  Cause.isCause(cause) ? Cause.pretty(cause) : typeof cause === "string" ? cause : String(cause)

/** The dispatcher's own errors cross as they are; the user's `E` encoded. */
const isDispatchError = (error: unknown): boolean =>
  error instanceof TooManyRequests || error instanceof Unavailable || error instanceof RequestTimeout ||
  error instanceof ChildFailed || error instanceof SchemaMismatch

/**
 * One key's entity on this runner: how its requests reach the root, and what
 * is in flight, to fence.
 */
class Activation {
  /** answers of requests forwarded and not yet answered; made at the first wait (most answers need none) */
  inFlight: Set<Deferred.Deferred<unknown, unknown>> | undefined = undefined
  readonly key: string
  /** this runner's lease on the key's shard, when it has one (`layerPostgres`) */
  readonly held: Held | undefined

  constructor(readonly runner: Runner, readonly shard: string, address: EntityAddress, held: Held | undefined) {
    this.key = address.entityId
    this.held = held
  }

  forward(envelope: { readonly payload: unknown; readonly requestId: bigint }): Effect.Effect<unknown, unknown> {
    const runner = this.runner
    if (this.held !== undefined && !this.held.holds(runner.clock)) {
      // this runner cannot show it still holds the shard: serve nothing of it
      runner.fence(this.shard)
      return Effect.failCause(this.refusal())
    }
    const decoded = runner.codecs.decodeRequest(envelope.payload)
    if (decoded._tag === "Failure") return Effect.fail(mismatchOf(this.key, "request on the runner", decoded))
    const request = decoded.value
    // the id makes a redelivered request's effect idempotent: a volatile one runs at most once
    if (runner.persisted && typeof request === "object" && request !== null) requestIds.set(request, envelope.requestId)
    return Effect.flatMap(Dispatcher.send(runner.root, request), this.settle)
  }

  /**
   * The child's answer, encoded for the wire. A child that answered inside
   * the send (a handler done at once) leaves nothing to wait for.
   */
  private readonly settle = (answer: Deferred.Deferred<unknown, unknown>): Effect.Effect<unknown, unknown> => {
    const done = answer.effect
    if (done !== undefined && Exit.isExit(done) && done._tag === "Success") return this.encode(done.value)
    return Effect.matchEffect(done ?? this.await(answer), this.outcome)
  }

  private readonly encode = (answer: unknown): Effect.Effect<unknown, unknown> => {
    const encoded = this.runner.codecs.encodeAnswer(answer)
    return encoded._tag === "Success" ? encoded : Exit.fail(mismatchOf(this.key, "answer on the runner", encoded))
  }

  private readonly outcome = {
    onSuccess: this.encode,
    onFailure: (error: unknown): Effect.Effect<unknown, unknown> => {
      const runner = this.runner
      if (error instanceof ChildFailed && typeof error.cause !== "string") {
        return Effect.fail(new ChildFailed({ key: error.key, cause: readable(error.cause) }))
      }
      // a persisted request the root did not serve (stopping, fenced) is left for the shard's owner
      if (error instanceof Unavailable && runner.persisted) return Effect.failCause(abandoned)
      if (isDispatchError(error)) return Effect.fail(error)
      const encoded = runner.codecs.encodeError(error)
      return encoded._tag === "Success"
        ? Effect.fail(new UserError({ encoded: encoded.value }))
        : Effect.fail(mismatchOf(this.key, "error on the runner", encoded))
    }
  }

  /** Wait for the child's answer; a caller that went withdraws the request (the child skips it). */
  private await(answer: Deferred.Deferred<unknown, unknown>): Effect.Effect<unknown, unknown> {
    const inFlight = this.inFlight ??= new Set()
    inFlight.add(answer)
    return Effect.onExit(Deferred.await(answer), (exit) =>
      Effect.sync(() => {
        inFlight.delete(answer)
        // not answered yet: this wait was interrupted (answered ones are done, and stay so)
        if (exit._tag === "Failure") Deferred.doneUnsafe(answer, Exit.interrupt())
      }))
  }

  /**
   * What a request this runner will not serve here gets: `Unavailable`; or,
   * for a persisted entity, the engine's own "abandoned" interruption
   * (`ClusterSchema.Abandon`), so the engine leaves the request in storage for
   * the shard's owner rather than store an answer from a runner that may no
   * longer hold the shard (it stores none once its lock is gone or it is
   * stopping).
   */
  refusal(): Cause.Cause<unknown> {
    return this.runner.persisted ? abandoned : Cause.fail(new Unavailable({ key: this.key }))
  }

  /** Answer what is in flight with the refusal, so its child skips it. */
  refuseInFlight(): void {
    const inFlight = this.inFlight
    if (inFlight === undefined || inFlight.size === 0) return
    const refused = Exit.failCause(this.refusal())
    for (const answer of inFlight) Deferred.doneUnsafe(answer, refused)
    inFlight.clear()
  }
}

/** A persisted request left for the shard's owner: an interruption the engine reads as abandoned. */
const abandoned: Cause.Cause<never> = Cause.annotate(Cause.interrupt(), ClusterSchema.Abandon.annotation)

/** This runner's entities of one shard, and the lease they read (one reader a shard: its cached end is shared). */
class ShardHere {
  readonly activations = new Set<Activation>()
  constructor(readonly held: Held | undefined) {}
}

/** This runner's root and the entities the engine runs here, by shard. */
class Runner {
  readonly byShard = new Map<string, ShardHere>()
  /** the current activation of each key here */
  readonly byKey = new Map<string, Activation>()

  constructor(
    readonly root: Dispatcher.Dispatcher<unknown, unknown, unknown>,
    readonly codecs: Codecs,
    readonly lease: Lease | undefined,
    readonly clock: Clock.Clock,
    /** the entity's requests are persisted (at least once): leftovers go back to storage */
    readonly persisted: boolean,
    /** how long an ending entity waits for its key's child */
    readonly endWait: Duration.Duration,
    readonly fork: <A, E>(effect: Effect.Effect<A, E>) => void
  ) {}

  activate(address: EntityAddress): Activation {
    const shard = address.shardId.toString()
    let here = this.byShard.get(shard)
    if (here === undefined) {
      here = new ShardHere(this.lease === undefined ? undefined : new Held(this.lease, shard))
      this.byShard.set(shard, here)
    }
    const activation = new Activation(this, shard, address, here.held)
    here.activations.add(activation)
    this.byKey.set(activation.key, activation)
    return activation
  }

  /**
   * The root's fence (`Dispatcher.Options.fence`), asked just before a child is
   * handed a request: does this runner hold the key's entity, with its lease on
   * the key's shard, now? A child frozen with requests in its mailbox (SIGSTOP,
   * a long pause) takes none of them once it resumes past its lease, before
   * any sweep has run.
   */
  holds(key: string): boolean {
    const activation = this.byKey.get(key)
    return activation !== undefined && activation.held!.holds(this.clock)
  }

  /** The engine ended the key's entity here: its child goes too, before the engine lets the shard go. */
  deactivate(activation: Activation): Effect.Effect<void> {
    const here = this.byShard.get(activation.shard)
    here?.activations.delete(activation)
    if (here?.activations.size === 0) this.byShard.delete(activation.shard)
    if (this.byKey.get(activation.key) === activation) this.byKey.delete(activation.key)
    // the engine waited for the requests in flight (up to its entityTerminationTimeout): what is
    // left is refused, and a persisted one left in storage for the next owner
    activation.refuseInFlight()
    return Dispatcher.passivate(this.root, activation.key).pipe(
      Effect.timeoutOption(this.endWait),
      Effect.flatMap(Option.match({
        onSome: () => Effect.void,
        onNone: () =>
          Effect.logWarning("the key's child did not end in time after its entity ended on this runner").pipe(
            Effect.annotateLogs({ key: activation.key, shard: activation.shard })
          )
      }))
    )
  }

  /** The lease on a shard lapsed: refuse what is in flight there and end its keys' children, now. */
  fence(shard: string): void {
    const here = this.byShard.get(shard)
    if (here === undefined) return
    for (const activation of here.activations) {
      activation.refuseInFlight()
      this.fork(Dispatcher.passivate(this.root, activation.key))
    }
  }

  /** Shards with entities here whose lease has lapsed. */
  lapsed(now: number): Array<string> {
    const out: Array<string> = []
    for (const shard of this.byShard.keys()) if (!this.lease!.holds(shard, now)) out.push(shard)
    return out
  }
}

/**
 * Register the entity on this runner: the user's factory under one root with
 * the runner's options, the engine's entity forwarding to it.
 */
export const runner = Effect.fnUntraced(function*<Req, Res, E, R>(
  entity: EntityImpl<Req, Res, E>,
  factory: Dispatcher.Factory<Req, Res, E, R>,
  options: Dispatcher.Options | undefined,
  extras: RunnerExtras
) {
  const sharding = yield* Sharding.Sharding
  const config = yield* Effect.serviceOption(ShardingConfig)
  const lease = yield* ShardLease
  const clock = yield* Clock.Clock
  // set below, once the root exists: the fence asks it
  let state: Runner | undefined = undefined
  const own = options?.fence
  const fence = lease === undefined
    ? own
    : own === undefined
    ? (key: string) => state !== undefined && state.holds(key)
    : (key: string) => state !== undefined && state.holds(key) && own(key)
  // the entity's key decides the child, as it decided the shard: one key, one place
  const root = yield* Dispatcher.make<Req, Res, E, R>(
    { keyOf: entity.keyOf, spawn: factory.spawn },
    fence === undefined ? { name: entity.name, ...options } : { name: entity.name, ...options, fence }
  )
  const scope = yield* Effect.scope
  const endWait = Duration.fromInputUnsafe(
    Option.match(config, { onNone: () => "15 seconds", onSome: (c) => c.entityTerminationTimeout })
  )
  const context = yield* Effect.context<never>()
  const forkIn = Effect.runForkWith(context)
  state = new Runner(
    root as Dispatcher.Dispatcher<unknown, unknown, unknown>,
    new Codecs(entity),
    lease,
    clock,
    entity.persisted,
    endWait,
    (effect) => void forkIn(Effect.ignore(effect))
  )
  entity.locals.add(root)
  yield* Scope.addFinalizer(scope, Effect.sync(() => entity.locals.delete(root)))

  const handlers = Effect.gen(function*() {
    const address = yield* ClusterEntity.CurrentAddress
    const activation = state.activate(address)
    yield* Effect.addFinalizer(() => state.deactivate(activation))
    return { [Call]: (envelope: { readonly payload: unknown; readonly requestId: bigint }) => activation.forward(envelope) }
  })
  // before the first request: the engine's per-request scopes must not be born old (see pretenuring.ts)
  yield* Effect.sync(settleScopePretenuring)
  yield* sharding.registerEntity(engineEntity(entity, yield* keepsServerSpans), handlers as any, {
    concurrency: "unbounded",
    mailboxCapacity: "unbounded",
    disableFatalDefects: true,
    maxIdleTime: extras.idleTimeToLive
  })

  if (lease !== undefined) {
    // the lease is checked on every request; this catches the requests already
    // in flight when it lapses, and the children of the shard's keys
    const every = Math.min(500, Math.max(50, Math.floor(lease.expirationMillis / 20)))
    yield* Effect.sync(() => {
      for (const shard of state.lapsed(lease.now(clock))) state.fence(shard)
    }).pipe(
      Effect.andThen(Effect.sleep(every)),
      Effect.forever,
      Effect.forkScoped
    )
  }
  yield* Effect.logDebug("runner registered").pipe(Effect.annotateLogs({ entity: entity.name }))
})

// -----------------------------------------------------------------------------
// The caller
// -----------------------------------------------------------------------------

/** The calling side's options. */
export interface HandleOptions {
  /** how long a volatile call may look for a runner before it is answered `Unavailable` */
  readonly unavailableAfter?: Duration.Input | undefined
}

/**
 * A message the engine itself could not read (its envelope, not the entity's
 * values, which are checked at the edges): crossed as a defect, named
 * `MalformedMessage`.
 */
const isMalformed = (defect: unknown): boolean =>
  Schema.isSchemaError(defect) ||
  (typeof defect === "object" && defect !== null &&
    (((defect as { _tag?: unknown })._tag === "MalformedMessage") ||
      String((defect as { name?: unknown }).name).endsWith("MalformedMessage")))

/**
 * A `Dispatcher.Dispatcher` handle over the engine's client: `call` and `send`
 * reach the key's runner; `stats` counts what this handle was answered, plus
 * the children of the entity's runners in this process; `children` and `tree`
 * show those local runners only (the rest live in other processes).
 */
export const handle = Effect.fnUntraced(function*<Req, Res, E>(
  entity: EntityImpl<Req, Res, E>,
  options: HandleOptions
) {
  const sharding = yield* Sharding.Sharding
  const config = yield* Effect.serviceOption(ShardingConfig)
  const governed = yield* Governed
  const clientFor = yield* sharding.makeClient(engineEntity(entity))
  const codecs = new Codecs(entity)
  const boundMillis = Duration.toMillis(Duration.fromInputUnsafe(options.unavailableAfter ?? "5 seconds"))
  const clock = yield* Clock.Clock
  /** volatile calls looking for a runner */
  const pending = new Set<Probe>()
  if (governed) {
    const every = Math.max(10, Math.min(100, Math.floor(boundMillis / 20)))
    yield* Effect.sync(() => {
      if (pending.size === 0) return
      const now = clock.currentTimeMillisUnsafe()
      for (const probe of pending) probe.tick(now)
    }).pipe(Effect.andThen(Effect.sleep(every)), Effect.forever, Effect.forkScoped)
  }
  const scope = yield* Effect.scope
  const engineCapacity = Option.match(config, {
    onNone: () => 0,
    onSome: (c) => (typeof c.entityMailboxCapacity === "number" ? c.entityMailboxCapacity : 0)
  })

  const counts = {
    accepted: 0,
    withdrawn: 0,
    tooManyRequests: 0,
    unavailable: 0,
    requestTimeout: 0,
    childFailed: 0,
    schemaMismatch: 0
  }
  let running = 0
  let stopping = false
  const stopped = Deferred.makeUnsafe<void>()
  const finishStop = () => {
    if (stopping && running === 0) Deferred.doneUnsafe(stopped, Exit.void)
  }

  /** An engine failure, in the dispatcher's words. */
  const mapCause = (key: string) => (cause: Cause.Cause<unknown>): Effect.Effect<never, unknown> => {
    for (const reason of cause.reasons) {
      if (reason._tag === "Fail") {
        const error = reason.error as { readonly _tag?: unknown }
        switch (error?._tag) {
          case "effect-dispatcher/Sharded/UserError": {
            const decoded = codecs.decodeError((error as UserError).encoded)
            return decoded._tag === "Success" ? Effect.fail(decoded.value) : Effect.fail(mismatchOf(key, "error at the caller", decoded))
          }
          case "MailboxFull":
            return Effect.fail(new TooManyRequests({ key, capacity: engineCapacity }))
          case "EntityNotAssignedToRunner":
          case "PersistenceError":
          case "AlreadyProcessingMessage":
            return Effect.fail(new Unavailable({ key }))
        }
        return Effect.fail(reason.error)
      }
      if (reason._tag === "Die" && isMalformed(reason.defect)) {
        return Effect.fail(
          new SchemaMismatch({ key, side: "request", what: `the engine could not read a message: ${String(reason.defect)}` })
        )
      }
    }
    // the runner's engine interrupted the request without answering it (its entity was stopped as the runner
    // lost its shard, its storage unhealthy, say): not answered is Unavailable, as in-process. (A caller that
    // is itself interrupted stays interrupted: this recovery runs in an interrupted fiber.)
    if (Cause.hasInterruptsOnly(cause)) return Effect.fail(new Unavailable({ key }))
    return Effect.failCause(cause)
  }

  /**
   * A volatile call that has found no runner by its deadline is answered
   * `Unavailable` then, its engine call interrupted without waiting for it (the
   * engine's interrupt for a request that went nowhere retries a few times).
   * The engine call runs in a fiber of its own, its probe in its context; one
   * sweep per handle checks the deadlines.
   */
  const bounded = (engineCall: Effect.Effect<unknown, unknown>, key: string): Effect.Effect<unknown, unknown> =>
    Effect.withFiber((parent) =>
      Effect.callback<unknown, unknown>((resume) => {
        const probe = new Probe(clock.currentTimeMillisUnsafe() + boundMillis)
        const fiber = Effect.runForkWith(Context.add(parent.context, CurrentProbe, probe))(engineCall)
        let done = false
        const finish = () => {
          done = true
          pending.delete(probe)
        }
        probe.giveUp = () => {
          if (done) return
          finish()
          fiber.interruptUnsafe()
          resume(Effect.fail(new Unavailable({ key })))
        }
        pending.add(probe)
        fiber.addObserver((exit) => {
          if (done) return
          finish()
          resume(exit)
        })
        return Effect.sync(() => {
          if (done) return
          finish()
          fiber.interruptUnsafe()
        })
      })
    )

  const count = (exit: Exit.Exit<unknown, unknown>): void => {
    if (exit._tag === "Success") {
      counts.accepted++
      return
    }
    const error = Cause.findErrorOption(exit.cause)
    if (Option.isNone(error)) {
      if (Cause.hasInterruptsOnly(exit.cause)) counts.withdrawn++
      else counts.accepted++
      return
    }
    switch ((error.value as { readonly _tag?: unknown })?._tag) {
      case "TooManyRequests":
        counts.tooManyRequests++
        break
      case "Unavailable":
        counts.unavailable++
        break
      case "RequestTimeout":
        counts.requestTimeout++
        break
      case "ChildFailed":
        counts.childFailed++
        break
      case "SchemaMismatch":
        counts.schemaMismatch++
        break
      default:
        counts.accepted++
    }
  }

  const call = (request: Req): Effect.Effect<Res, E | Dispatcher.DispatchError> =>
    Effect.withFiber((fiber) => {
      let key: string
      try {
        key = entity.keyOf(request)
      } catch (defect) {
        return Effect.die(defect)
      }
      if (stopping) {
        counts.unavailable++
        return Effect.fail(new Unavailable({ key }))
      }
      const encoded = codecs.encodeRequest(request)
      if (encoded._tag === "Failure") {
        counts.schemaMismatch++
        return Effect.fail(mismatchOf(key, "request at the caller", encoded))
      }
      running++
      const client = clientFor(key) as unknown as Record<string, (payload: unknown) => Effect.Effect<unknown, unknown>>
      let sent = client[Call]!(encoded.value).pipe(
        Effect.matchCauseEffect({
          onSuccess: (answer): Effect.Effect<unknown, unknown> => {
            const decoded = codecs.decodeAnswer(answer)
            return decoded._tag === "Success"
              ? Effect.succeed(decoded.value)
              : Effect.fail(mismatchOf(key, "answer at the caller", decoded))
          },
          onFailure: mapCause(key)
        })
      )
      if (!entity.persisted && governed) sent = bounded(sent, key)
      const counted = Effect.onExit(sent, (exit) =>
        Effect.sync(() => {
          running--
          count(exit)
          finishStop()
        }))
      // a span only where a tracer is installed to read it, as the in-process dispatcher's
      if (!isTraced(fiber)) return counted as Effect.Effect<Res, E | Dispatcher.DispatchError>
      return counted.pipe(
        // no stack trace: capturing one per call cost the client about 4% of its CPU (profiled, bench:sharded)
        Effect.withSpan(
          "Sharded.call",
          { kind: "client", attributes: { "dispatcher.name": entity.name, "dispatcher.key": key } },
          { captureStackTrace: false }
        )
      ) as Effect.Effect<Res, E | Dispatcher.DispatchError>
    })

  /**
   * Accepted at once: the runner's refusal, if any, arrives through the
   * Deferred. If the handle's layer ends first, the call is interrupted and
   * the Deferred answered `Unavailable`: nobody waits for ever on it.
   */
  const send = (request: Req) =>
    Effect.gen(function*() {
      const answer = yield* Deferred.make<Res, E | Dispatcher.DispatchError>()
      yield* call(request).pipe(
        Effect.onExit((exit) =>
          Deferred.done(
            answer,
            exit._tag === "Failure" && Cause.hasInterruptsOnly(exit.cause)
              ? Exit.fail(new Unavailable({ key: keyOrEmpty(request) }))
              : exit
          )
        ),
        Effect.forkIn(scope, { startImmediately: true })
      )
      return answer
    })

  const keyOrEmpty = (request: Req): string => {
    try {
      return entity.keyOf(request)
    } catch {
      return ""
    }
  }

  const localStats = (): Dispatcher.Stats => {
    const out = {
      live: 0,
      spawned: 0,
      successors: 0,
      failures: 0,
      accepted: counts.accepted,
      withdrawn: counts.withdrawn,
      rejected: {
        tooManyRequests: counts.tooManyRequests,
        unavailable: counts.unavailable,
        requestTimeout: counts.requestTimeout,
        childFailed: counts.childFailed
      }
    }
    return out
  }

  const stats = Effect.gen(function*() {
    const out = localStats()
    let live = 0, spawned = 0, successors = 0, failures = 0
    for (const root of entity.locals) {
      const s = yield* Dispatcher.stats(root)
      live += s.live
      spawned += s.spawned
      successors += s.successors
      failures += s.failures
    }
    return { ...out, live, spawned, successors, failures } satisfies Dispatcher.Stats
  })

  const children = Effect.map(
    Effect.forEach(entity.locals, (root) => Dispatcher.children(root)),
    (all) => all.flat()
  )

  const tree = Effect.gen(function*() {
    const below = yield* Effect.forEach(entity.locals, (root) => Dispatcher.tree(root))
    return {
      name: entity.name,
      path: entity.name,
      stats: yield* stats,
      children: below.flatMap((t) => t.children)
    } satisfies Dispatcher.Tree
  })

  // the hot and stuck keys of the runners in this process (a remote runner's are asked on its own process)
  const hotKeys = (options: Dispatcher.HotKeysOptions) =>
    Effect.map(
      Effect.forEach(entity.locals, (root) => Dispatcher.hotKeys(root, options), { concurrency: "unbounded" }),
      (lists) =>
        lists.flat().sort((a, b) => {
          const measure = options.by
          const diff = (measure === "oldest" ? b.oldest - a.oldest : b[measure] - a[measure])
          return diff !== 0 ? diff : a.path < b.path ? -1 : a.path > b.path ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0
        }).slice(0, options.top)
    )

  const beginStop = Effect.sync(() => {
    stopping = true
    finishStop()
  })
  const shutdown = Effect.andThen(beginStop, Deferred.await(stopped))
  // the layer's end refuses new calls; calls in flight belong to their callers (a persisted one may wait
  // for a runner for long): the layer does not wait for them, `Dispatcher.shutdown` does
  yield* Scope.addFinalizer(scope, beginStop)

  return Dispatcher.fromImplementation<Req, Res, E>({
    name: entity.name,
    send,
    call,
    shutdown,
    awaitStop: Deferred.await(stopped),
    stats,
    children,
    tree,
    hotKeys
  })
})
