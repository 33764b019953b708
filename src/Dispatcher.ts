/**
 * A keyed, hierarchical request dispatcher: requests are routed by key to a
 * child fiber spawned on demand, fed through a bounded mailbox, succeeded when
 * it stops with work left, and stopped gracefully with nothing lost. The
 * Effect form of Kafka-Pixy's `consumer/dispatcher`.
 *
 * @module effect-dispatcher/Dispatcher
 * @since 0.1.0
 */
import type { Cause, Config, Context, Deferred, Duration, Effect, Exit, Layer, Metric, Pipeable, Queue, Schedule, Scope } from "effect"
import { Effect as E, Layer as L } from "effect"
import { dual } from "effect/Function"
import * as DispatchErrors from "./DispatchError.js"
import * as configs from "./internal/config.js"
import * as metered from "./internal/metrics.js"
import * as downstream from "./internal/downstream.js"
import * as handle from "./internal/handle.js"
import * as hotKeyOptions from "./internal/hotKeys.js"
import * as root from "./internal/root.js"
import * as served from "./internal/serve.js"
import * as testing from "./internal/testChild.js"

export {
  /**
   * The child serving the key failed and could not answer (its restarts gave
   * up, or it failed holding the request). See `DispatchError.ChildFailed`.
   *
   * @example
   * ```ts
   * import { Effect } from "effect"
   * import { Dispatcher } from "effect-dispatcher"
   *
   * declare const d: Dispatcher.Dispatcher<string, string>
   * const answer = Dispatcher.call(d, "job").pipe(Effect.catchTag("ChildFailed", (e) => Effect.succeed(`broken: ${e.key}`)))
   * ```
   *
   * @since 0.1.0
   * @category errors
   */
  ChildFailed,
  /**
   * An option was invalid; the message names it and the value. See `DispatchError.InvalidOptions`.
   *
   * @example
   * ```ts
   * import { Effect } from "effect"
   * import { Dispatcher } from "effect-dispatcher"
   *
   * declare const factory: Dispatcher.Factory<string>
   * const made = Dispatcher.make(factory, { maxChildren: 0 }).pipe(Effect.catchTag("InvalidOptions", (e) => Effect.die(e.message)))
   * ```
   *
   * @since 0.1.0
   * @category errors
   */
  InvalidOptions,
  /**
   * The request's deadline passed before it was answered. See `DispatchError.RequestTimeout`.
   *
   * @example
   * ```ts
   * import { Effect } from "effect"
   * import { Dispatcher } from "effect-dispatcher"
   *
   * declare const d: Dispatcher.Dispatcher<string, string>
   * const answer = Dispatcher.call(d, "poll").pipe(Effect.catchTag("RequestTimeout", () => Effect.succeed("empty")))
   * ```
   *
   * @since 0.1.0
   * @category errors
   */
  RequestTimeout,
  /**
   * A request or its answer did not fit its Schema between processes: only
   * handles whose requests cross a process boundary (`Sharded.layer`) answer
   * with it. See `DispatchError.SchemaMismatch`.
   *
   * @example
   * ```ts
   * import { Effect } from "effect"
   * import { Dispatcher } from "effect-dispatcher"
   *
   * declare const d: Dispatcher.Dispatcher<string, string>
   * const answer = Dispatcher.call(d, "job").pipe(Effect.catchTag("SchemaMismatch", (e) => Effect.succeed(`not understood: ${e.what}`)))
   * ```
   *
   * @since 0.1.0
   * @category errors
   */
  SchemaMismatch,
  /**
   * The key's mailbox (or the cap on children) was full. See `DispatchError.TooManyRequests`.
   *
   * @example
   * ```ts
   * import { Effect } from "effect"
   * import { Dispatcher } from "effect-dispatcher"
   *
   * declare const d: Dispatcher.Dispatcher<string, string>
   * const answer = Dispatcher.call(d, "job").pipe(Effect.catchTag("TooManyRequests", () => Effect.succeed("try later")))
   * ```
   *
   * @since 0.1.0
   * @category errors
   */
  TooManyRequests,
  /**
   * The dispatcher is stopping or stopped. See `DispatchError.Unavailable`.
   *
   * @example
   * ```ts
   * import { Effect } from "effect"
   * import { Dispatcher } from "effect-dispatcher"
   *
   * declare const d: Dispatcher.Dispatcher<string, string>
   * const answer = Dispatcher.call(d, "job").pipe(Effect.catchTag("Unavailable", () => Effect.succeed("shutting down")))
   * ```
   *
   * @since 0.1.0
   * @category errors
   */
  Unavailable
} from "./DispatchError.js"

/**
 * Every error the dispatcher itself can answer a request with.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * declare const dispatcher: Dispatcher.Dispatcher<string, string>
 *
 * const answer = Dispatcher.call(dispatcher, "job").pipe(
 *   Effect.catchTags({
 *     TooManyRequests: () => Effect.succeed("shed"),
 *     Unavailable: () => Effect.succeed("stopping"),
 *     RequestTimeout: () => Effect.succeed("late"),
 *     ChildFailed: () => Effect.succeed("broken"),
 *     SchemaMismatch: () => Effect.succeed("not understood") // only from handles that cross processes
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export type DispatchError = DispatchErrors.DispatchError

/**
 * The key that decides which child serves a request (Go: `Key`).
 *
 * @example
 * ```ts
 * import type { Dispatcher } from "effect-dispatcher"
 *
 * const keyOf = (request: { readonly group: string }): Dispatcher.Key => request.group
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Key = string

/**
 * What a child receives: the request and the means to answer it once. The
 * first answer wins; a later one returns `false` and changes nothing. Only the
 * library makes envelopes (through `send` or `testChild`), and it can answer
 * one itself with a `DispatchError` (a deadline, a stop).
 *
 * @example
 * ```ts
 * import { Effect, Queue } from "effect"
 * import type { Dispatcher } from "effect-dispatcher"
 *
 * // a child that answers each request with its length
 * const child = (spec: Dispatcher.ChildSpec<string, number>) =>
 *   Effect.forever(
 *     Effect.flatMap(Queue.take(spec.requests), (envelope) => envelope.succeed(envelope.request.length))
 *   )
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Envelope<Req, Res = void, E = never> {
  readonly key: Key
  readonly request: Req
  /** Clock millis when the request was accepted */
  readonly enqueuedAt: number
  /** Answer with an exit; `false` if it was already answered */
  readonly reply: (exit: Exit.Exit<Res, E>) => Effect.Effect<boolean>
  /** Answer with a value; `false` if it was already answered */
  readonly succeed: (value: Res) => Effect.Effect<boolean>
  /** Answer with an error; `false` if it was already answered */
  readonly fail: (error: E) => Effect.Effect<boolean>
}

/**
 * What a factory is handed for each child (Go: `ChildSpec`). `requests` ends
 * with `Cause.Done` once the parent stops; what is already in it can still be
 * taken first.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * const spawn = (child: Dispatcher.ChildSpec<string, string>) =>
 *   Dispatcher.serve(child, (request, key) => Effect.succeed(`${key}: ${request}`))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface ChildSpec<Req, Res = void, E = never> {
  readonly key: Key
  readonly requests: Queue.Dequeue<Envelope<Req, Res, E>, Cause.Done>
}

/**
 * How children are keyed and started (Go: `Factory`). `spawn` is the child's
 * whole life: it runs in a fiber of its own, in a Scope of its own that closes
 * when it ends (its finalizers are Go's `WithFinalizer`). Ending for any reason,
 * success, failure, defect or interruption, is the child's disposal.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * interface Poll { readonly group: string; readonly topic: string }
 *
 * const groups: Dispatcher.Factory<Poll, string> = {
 *   keyOf: (poll) => poll.group,
 *   spawn: (child) =>
 *     Effect.addFinalizer(() => Effect.log(`group ${child.key} deregistered`)).pipe(
 *       Effect.andThen(Dispatcher.serve(child, (poll) => Effect.succeed(`${poll.group}/${poll.topic}`)))
 *     )
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Factory<Req, Res = void, E = never, R = never> {
  /** The key of a request: requests with the same key go to the same child */
  readonly keyOf: (request: Req) => Key
  /** The child's whole life, in a fiber and a Scope of its own; its end, for any reason, is its disposal */
  readonly spawn: (child: ChildSpec<Req, Res, E>) => Effect.Effect<unknown, unknown, R | Scope.Scope>
}

/**
 * How a dispatcher is run. Every option is validated with Schema where it is
 * given (`make`, `layer`, `runChild`); a bad one fails `InvalidOptions` naming
 * the option and the value.
 *
 * @example
 * ```ts
 * import { Schedule } from "effect"
 * import type { Dispatcher } from "effect-dispatcher"
 *
 * const options: Dispatcher.Options = {
 *   name: "groups",
 *   mailboxCapacity: 128,
 *   overflow: { wait: "50 millis" },
 *   requestTimeout: "3 seconds",
 *   restart: Schedule.exponential("20 millis").pipe(Schedule.upTo({ times: 5 })),
 *   maxChildren: 10_000,
 *   shutdownTimeout: "30 seconds"
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * Requests a child's mailbox holds; default 64 (Kafka-Pixy's `channel_buffer_size`). A request
   * the child has taken (its handler is running) has left the mailbox, so one key can have
   * `mailboxCapacity + 1` accepted requests unanswered: with 8, a ninth is accepted while the
   * handler holds the first, and the tenth fails `TooManyRequests`.
   */
  readonly mailboxCapacity?: number
  /** This dispatcher's name in logs, spans and metrics; default `"dispatcher"` */
  readonly name?: string
  /** `"reject"` (default) answers a full mailbox `TooManyRequests` at once; `{ wait }` waits for room that long */
  readonly overflow?: "reject" | { readonly wait: Duration.Input }
  /** A request's whole budget from acceptance; at its deadline it is answered `RequestTimeout` */
  readonly requestTimeout?: Duration.Input
  /**
   * Paces successors of failing children; default exponential from 10 ms,
   * capped at 1 s, ten failures. A child that dies before it took a request
   * (a defect at its start) is not restarted: it would die the same way. A
   * schedule without delays (`Schedule.forever`) respawns a failing child on
   * every turn of the event loop, a core's worth of work for as long as it
   * fails (the log says so at the first ten failures, then at every power of
   * ten): give it a delay (`Schedule.spaced`) and a limit.
   */
  readonly restart?: Schedule.Schedule<unknown, unknown>
  /**
   * A cap on live children, held at every moment (children still ending count):
   * a new key passivates the least recently used idle child and its own child
   * starts once that one has ended; when every child has work waiting, the new
   * key's request fails `TooManyRequests`.
   */
  readonly maxChildren?: number
  /**
   * How long a stop waits for children to end by themselves; default: as long
   * as it takes (the seed's behaviour). Past it, the children still running
   * are interrupted, at every level below, and what they held or left in their
   * mailboxes is answered `Unavailable`. It defuses a child that never ends: a
   * handler stuck for ever, or a child that `call`s its own key (it waits on
   * itself, a deadlock that a `requestTimeout` also breaks).
   */
  readonly shutdownTimeout?: Duration.Input
  /**
   * A fence on the children: asked with a request's key just before a child
   * is handed the request (a `serve` child about to run its handler, a
   * downstream level of `runChild` about to place it). `false` answers the
   * request `Unavailable` instead, and the child is not given it. Levels below
   * inherit it: a request is fenced there when its key's level above is. For
   * children that must stop acting the moment they may no longer be the only
   * one for their key (a `Sharded` runner fences the keys of a shard whose
   * lease may have lapsed). It runs on every request: keep it cheap; one that
   * throws fences. A child body of your own that takes from `requests` itself
   * is not fenced. Default: none.
   */
  readonly fence?: (key: Key) => boolean
}

/**
 * The options of `serve`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * const spawn = (child: Dispatcher.ChildSpec<string, string>) =>
 *   Dispatcher.serve(child, (request) => Effect.succeed(request), { idleTimeToLive: "15 seconds" })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface ServeOptions {
  /** End the child after this long without a request (Kafka-Pixy's `subscription_timeout`) */
  readonly idleTimeToLive?: Duration.Input
  /**
   * What a stop of the dispatcher does to this child: `"drain"` (default) lets it
   * finish what it holds and what waits in its mailbox; `"interrupt"` interrupts
   * it at once, answering what it holds `Unavailable` (for handlers that wait
   * on something else, such as long polls).
   */
  readonly onStop?: "drain" | "interrupt"
}

/**
 * A root dispatcher (Go: `T`). Opaque: use it with `send`, `call`,
 * `shutdown`, `awaitStop`, `stats` and `children`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * const program = Effect.gen(function*() {
 *   const echo = yield* Dispatcher.make<string, string>({
 *     keyOf: (s) => s,
 *     spawn: (child) => Dispatcher.serve(child, (s: string) => Effect.succeed(s))
 *   })
 *   return yield* Dispatcher.call(echo, "hello")
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Dispatcher<in Req, out Res = void, out E = never> extends Pipeable.Pipeable {
  readonly [TypeId]: Dispatcher.Variance<Req, Res, E>
}

/**
 * The property that marks a value as a `Dispatcher` handle. A type error
 * about a value that is not a dispatcher names it (`Property '[TypeId]' is missing`).
 *
 * @example
 * ```ts
 * import { Dispatcher } from "effect-dispatcher"
 *
 * const isDispatcher = (u: unknown): u is Dispatcher.Dispatcher<unknown, unknown, unknown> =>
 *   typeof u === "object" && u !== null && Dispatcher.TypeId in u
 * ```
 *
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: "~effect-dispatcher/Dispatcher" = handle.TypeId

/**
 * The type of `TypeId`.
 *
 * @example
 * ```ts
 * import type { Dispatcher } from "effect-dispatcher"
 *
 * type Id = Dispatcher.TypeId // "~effect-dispatcher/Dispatcher"
 * ```
 *
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * What a handle does when `send`, `call`, `shutdown`, `awaitStop`, `stats`,
 * `children` or `tree` is asked of it. `Dispatcher.make` and `Dispatcher.layer`
 * give handles backed by the in-process dispatcher; `Sharded.layer` gives one
 * backed by a cluster; `fromImplementation` wraps one of your own (a test
 * double, say), and every function of this module works on it unchanged.
 *
 * @example
 * ```ts
 * import { Deferred, Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * const stats: Dispatcher.Stats = {
 *   live: 0, spawned: 0, successors: 0, failures: 0, accepted: 0, withdrawn: 0,
 *   rejected: { tooManyRequests: 0, unavailable: 0, requestTimeout: 0, childFailed: 0 }
 * }
 * const upper: Dispatcher.Implementation<string, string> = {
 *   name: "upper",
 *   send: (request) =>
 *     Effect.gen(function*() {
 *       const answer = yield* Deferred.make<string, Dispatcher.DispatchError>()
 *       yield* Deferred.succeed(answer, request.toUpperCase())
 *       return answer
 *     }),
 *   call: (request) => Effect.succeed(request.toUpperCase()),
 *   shutdown: Effect.void,
 *   awaitStop: Effect.void,
 *   stats: Effect.succeed(stats),
 *   children: Effect.succeed([]),
 *   tree: Effect.succeed({ name: "upper", path: "upper", stats, children: [] })
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Implementation<Req, Res = void, E = never> {
  /** its name in messages */
  readonly name: string
  /** accept a request: the Deferred its answer completes, or the refusal */
  readonly send: (
    request: Req
  ) => Effect.Effect<
    Deferred.Deferred<Res, E | DispatchError>,
    DispatchErrors.TooManyRequests | DispatchErrors.Unavailable
  >
  /** send, then wait for the answer */
  readonly call: (request: Req) => Effect.Effect<Res, E | DispatchError>
  /** stop, and return once stopped */
  readonly shutdown: Effect.Effect<void>
  /** return once stopped */
  readonly awaitStop: Effect.Effect<void>
  /** what it has done so far */
  readonly stats: Effect.Effect<Stats>
  /** its live children */
  readonly children: Effect.Effect<ReadonlyArray<ChildInfo>>
  /** it and every level below it */
  readonly tree: Effect.Effect<Tree>
  /** End one key's child (see `passivate`); without it, `passivate` does nothing */
  readonly passivate?: (key: Key) => Effect.Effect<void>
  /** The top keys by one measure (see `hotKeys`), options already validated; without it, `hotKeys` answers `[]` */
  readonly hotKeys?: (options: HotKeysOptions) => Effect.Effect<ReadonlyArray<KeyFigures>>
}

/**
 * A handle backed by an implementation of your own: `send`, `call`, `stats`
 * and the rest of this module ask it. For test doubles, and for other
 * back-ends (the `Sharded` module is built this way).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * declare const implementation: Dispatcher.Implementation<string, string>
 *
 * const handle = Dispatcher.fromImplementation(implementation)
 * const answer = Dispatcher.call(handle, "hello")
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromImplementation = <Req, Res = void, E = never>(
  implementation: Implementation<Req, Res, E>
): Dispatcher<Req, Res, E> => new handle.Handle(implementation)

/**
 * Types that belong to `Dispatcher`.
 *
 * @example
 * ```ts
 * import type { Dispatcher } from "effect-dispatcher"
 *
 * // a dispatcher of string requests is a dispatcher of "a" | "b" requests too (contravariant in Req)
 * const narrow = (d: Dispatcher.Dispatcher<string, number>): Dispatcher.Dispatcher<"a" | "b", number> => d
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export declare namespace Dispatcher {
  /**
   * The dispatcher's variance: it takes `Req` in, and gives `Res` and `E` out.
   *
   * @example
   * ```ts
   * import type { Dispatcher } from "effect-dispatcher"
   *
   * type Out = Dispatcher.Dispatcher.Variance<string, number, never>["_Res"] // (_: never) => number
   * ```
   *
   * @since 0.1.0
   * @category models
   */
  export interface Variance<in Req, out Res, out E> {
    /** the requests it takes (contravariant) */
    readonly _Req: (_: Req) => void
    /** the answers it gives (covariant) */
    readonly _Res: (_: never) => Res
    /** the errors its children answer with (covariant) */
    readonly _E: (_: never) => E
  }
}

/**
 * What a dispatcher has done so far, and what lives now.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * declare const dispatcher: Dispatcher.Dispatcher<string, string>
 *
 * const report = Effect.map(Dispatcher.stats(dispatcher), (s) => `${s.live} live, ${s.accepted} accepted`)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  /** children alive now */
  readonly live: number
  /** children spawned, successors included */
  readonly spawned: number
  readonly successors: number
  /** children that ended by failure or defect */
  readonly failures: number
  readonly accepted: number
  /** accepted requests whose caller stopped waiting (an interrupted `call`) before they were answered */
  readonly withdrawn: number
  /** requests the dispatcher refused or answered with an error, by error */
  readonly rejected: {
    readonly tooManyRequests: number
    readonly unavailable: number
    readonly requestTimeout: number
    readonly childFailed: number
  }
}

/**
 * One live child: its key, what waits in its mailbox, and which incarnation
 * serves it (1, then +1 per successor).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * declare const dispatcher: Dispatcher.Dispatcher<string, string>
 *
 * const busiest = Effect.map(
 *   Dispatcher.children(dispatcher),
 *   (children) => [...children].sort((a, b) => b.mailboxSize - a.mailboxSize)[0]
 * )
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface ChildInfo {
  readonly key: Key
  readonly mailboxSize: number
  readonly incarnation: number
}

/**
 * A snapshot of a dispatcher and, for each child that is itself a dispatcher
 * (`runChild`), of that dispatcher in turn: the whole tree, level by level.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * declare const groups: Dispatcher.Dispatcher<{ group: string; topic: string }, string>
 *
 * // every topic consumer of every group
 * const consumers = Effect.map(Dispatcher.tree(groups), (tree) =>
 *   tree.children.flatMap((group) => (group.downstream?.children ?? []).map((topic) => `${group.key}/${topic.key}`))
 * )
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Tree {
  /** the dispatcher's `name` */
  readonly name: string
  /** its path in the tree: each level's name, then the key it serves (`groups/g1/topics`) */
  readonly path: string
  readonly stats: Stats
  readonly children: ReadonlyArray<TreeChild>
}

/**
 * A live child in a `Tree`, with the dispatcher it runs if it is one.
 *
 * @example
 * ```ts
 * import type { Dispatcher } from "effect-dispatcher"
 *
 * const describe = (child: Dispatcher.TreeChild): string =>
 *   child.downstream === undefined ? child.key : `${child.key} (${child.downstream.children.length} below)`
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface TreeChild extends ChildInfo {
  readonly downstream?: Tree
}

/**
 * What `hotKeys` ranks keys by:
 *
 * - `"depth"`: requests waiting for the key (its mailbox, and what a `serve`
 *   child has taken and not started);
 * - `"oldest"`: the age of the oldest request it has;
 * - `"rate"`: requests placed for it per second over the recent window;
 * - `"failures"`: consecutive failures of its children now.
 *
 * @example
 * ```ts
 * import type { Dispatcher } from "effect-dispatcher"
 *
 * const measures: ReadonlyArray<Dispatcher.HotKeysMeasure> = ["depth", "oldest", "rate", "failures"]
 * ```
 *
 * @since 0.1.0
 * @category observability
 */
export type HotKeysMeasure = "depth" | "oldest" | "rate" | "failures"

/**
 * The options of `hotKeys`. Validated where given: a bad one makes `hotKeys`
 * die with `InvalidOptions` naming it.
 *
 * @example
 * ```ts
 * import type { Dispatcher } from "effect-dispatcher"
 *
 * const stuckFirst: Dispatcher.HotKeysOptions = { top: 10, by: "oldest", stuckAfter: "5 seconds" }
 * const busiest: Dispatcher.HotKeysOptions = { top: 20, by: "rate", window: "10 seconds" }
 * ```
 *
 * @since 0.1.0
 * @category observability
 */
export interface HotKeysOptions {
  /** How many keys at most (a positive integer) */
  readonly top: number
  /** The measure they are ranked by, most first; only keys with some of it (above 0) are listed */
  readonly by: HotKeysMeasure
  /**
   * A key is stuck once its oldest request is older than this. Default: the
   * `requestTimeout` of the key's level (the shortest of it and the levels'
   * above); with none, no key is stuck.
   */
  readonly stuckAfter?: Duration.Input
  /** The window rates are measured over; default 1 second */
  readonly window?: Duration.Input
}

/**
 * One key's figures, as `hotKeys` reads them from what the dispatcher keeps
 * anyway, at any level of a tree.
 *
 * @example
 * ```ts
 * import type { Dispatcher } from "effect-dispatcher"
 *
 * const line = (k: Dispatcher.KeyFigures): string =>
 *   `${k.path} ${k.key}: ${k.depth} waiting, oldest ${k.oldest} ms${k.stuck ? " (stuck)" : ""}`
 * ```
 *
 * @since 0.1.0
 * @category observability
 */
export interface KeyFigures {
  readonly key: Key
  /** The path of the dispatcher serving the key: each level's name, then the key above (`groups/g1/topics`) */
  readonly path: string
  /** Requests waiting for the key: in its mailbox, and taken by a `serve` child but not started */
  readonly depth: number
  /**
   * Millis since the oldest request the key has was accepted: the one its
   * child is handling, else the head of its mailbox (0: none). A request whose
   * deadline passed still counts while the child has not taken it: the key
   * has not moved.
   */
  readonly oldest: number
  /** Requests placed for the key per second over the recent window (0 before a window was measured) */
  readonly rate: number
  /** Consecutive failures of its children now (a successful answer resets it) */
  readonly failures: number
  /** Successors spawned for the key so far */
  readonly restarts: number
  /** Its oldest request is older than the stuck threshold */
  readonly stuck: boolean
}

/**
 * What `testChild` gives: a spec to hand to the child under test, a way to
 * offer it requests as a dispatcher would, and a way to end its mailbox.
 *
 * @example
 * ```ts
 * import { Deferred, Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * const program = Effect.gen(function*() {
 *   const t = yield* Dispatcher.testChild<string, number>("k")
 *   yield* Effect.forkChild(Dispatcher.serve(t.spec, (s) => Effect.succeed(s.length)))
 *   const answer = yield* t.offer("four")
 *   return yield* Deferred.await(answer) // 4
 * })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface TestChild<Req, Res = void, E = never> {
  readonly spec: ChildSpec<Req, Res, E>
  /** Offer a request as a dispatcher would: the Deferred its answer completes, or a refusal */
  readonly offer: (
    request: Req
  ) => Effect.Effect<
    Deferred.Deferred<Res, E | DispatchError>,
    DispatchErrors.TooManyRequests | DispatchErrors.Unavailable
  >
  readonly end: Effect.Effect<void>
}

/**
 * A root dispatcher in the current Scope; closing that Scope stops it (Go:
 * `Stop`). The dispatcher's children run with the services of the fiber that
 * made it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * const program = Effect.gen(function*() {
 *   const upper = yield* Dispatcher.make({
 *     keyOf: (word: string) => word[0] ?? "",
 *     spawn: (child) => Dispatcher.serve(child, (word: string) => Effect.succeed(word.toUpperCase()))
 *   }, { mailboxCapacity: 16 })
 *   return yield* Dispatcher.call(upper, "kafka") // "KAFKA"
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: <Req, Res = void, E = never, R = never>(
  factory: Factory<Req, Res, E, R>,
  options?: Options
) => Effect.Effect<Dispatcher<Req, Res, E>, DispatchErrors.InvalidOptions, R | Scope.Scope> = root.make

/**
 * `make` as a Layer for a service tag of your own.
 *
 * @example
 * ```ts
 * import { Context, Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * class Upper extends Context.Service<Upper, Dispatcher.Dispatcher<string, string>>()("app/Upper") {}
 *
 * const UpperLive = Dispatcher.layer(Upper, {
 *   keyOf: (word: string) => word,
 *   spawn: (child) => Dispatcher.serve(child, (word: string) => Effect.succeed(word.toUpperCase()))
 * })
 *
 * const program = Effect.flatMap(Effect.service(Upper), (upper) => Dispatcher.call(upper, "kafka")).pipe(
 *   Effect.provide(UpperLive)
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <Self, Req, Res, E, R>(
  tag: Context.Key<Self, Dispatcher<Req, Res, E>>,
  factory: Factory<Req, Res, E, R>,
  options?: Options
): Layer.Layer<Self, DispatchErrors.InvalidOptions, R> =>
  L.effect(tag, root.make(factory, options)) as Layer.Layer<Self, DispatchErrors.InvalidOptions, R>

/**
 * The options read from configuration, for `layerConfig`: `DISPATCHER_MAILBOX_CAPACITY`,
 * `DISPATCHER_NAME`, `DISPATCHER_OVERFLOW_WAIT`, `DISPATCHER_REQUEST_TIMEOUT` and
 * `DISPATCHER_MAX_CHILDREN` (with another `prefix`, `PREFIX_...`). Each is
 * optional and validated with Schema: a bad value is a `ConfigError` whose path
 * names the variable. Durations are Effect duration strings (`"500 millis"`).
 * A restart schedule is code, not configuration: add it with `Config.map`.
 *
 * @example
 * ```ts
 * import { Config, Schedule } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * // GROUPS_MAILBOX_CAPACITY=128 GROUPS_REQUEST_TIMEOUT="3 seconds"
 * const options = Dispatcher.config("GROUPS").pipe(
 *   Config.map((o) => ({ ...o, restart: Schedule.spaced("1 second").pipe(Schedule.upTo({ times: 3 })) }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category configuration
 */
export const config: (prefix?: string) => Config.Config<Options> = configs.config

/**
 * `layer` with its options read from configuration (see `config`). A bad
 * value fails the layer with a `ConfigError` naming the variable.
 *
 * @example
 * ```ts
 * import { ConfigProvider, Context, Effect, Layer } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * class Upper extends Context.Service<Upper, Dispatcher.Dispatcher<string, string>>()("app/Upper") {}
 *
 * const UpperLive = Dispatcher.layerConfig(Upper, {
 *   keyOf: (word: string) => word,
 *   spawn: (child) => Dispatcher.serve(child, (word: string) => Effect.succeed(word.toUpperCase()))
 * }, Dispatcher.config())
 *
 * // DISPATCHER_MAILBOX_CAPACITY=128 from the environment:
 * const live = UpperLive.pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv())))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = <Self, Req, Res, E, R>(
  tag: Context.Key<Self, Dispatcher<Req, Res, E>>,
  factory: Factory<Req, Res, E, R>,
  options: Config.Config<Options>
): Layer.Layer<Self, DispatchErrors.InvalidOptions | Config.ConfigError, R> =>
  L.effect(tag, E.flatMap(options, (o) => root.make(factory, o))) as Layer.Layer<
    Self,
    DispatchErrors.InvalidOptions | Config.ConfigError,
    R
  >

/**
 * The dispatcher's metrics, each series tagged `dispatcher` with the
 * dispatcher's `name` (every dispatcher of a name adds to the same series) and
 * `requests` also with `outcome` (`accepted`, `withdrawn`, `too_many_requests`,
 * `unavailable`, `request_timeout`, `child_failed`). They are read when
 * snapshotted, from counters the dispatcher keeps anyway: no cost per request.
 *
 * @example
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * const accepted = Metric.value(
 *   Metric.withAttributes(Dispatcher.metrics.requests, { dispatcher: "groups", outcome: "accepted" })
 * )
 * const live = Metric.value(Metric.withAttributes(Dispatcher.metrics.liveChildren, { dispatcher: "groups" }))
 * ```
 *
 * @since 0.1.0
 * @category observability
 */
export const metrics: {
  readonly requests: Metric.Counter<number>
  readonly spawns: Metric.Counter<number>
  readonly successors: Metric.Counter<number>
  readonly failures: Metric.Counter<number>
  readonly liveChildren: Metric.Gauge<number>
} = {
  requests: metered.requests,
  spawns: metered.spawns,
  successors: metered.successors,
  failures: metered.failures,
  liveChildren: metered.liveChildren
}

/**
 * A downstream dispatcher serving a parent's child mailbox (Go: `Spawn` with
 * `WithChildSpec`), used inside a parent factory's `spawn`. It returns when its
 * mailbox has ended and its children are gone, or when its last child has
 * ended and no request waits. A request it cannot place is answered to the
 * original caller (`TooManyRequests` with this level's key and capacity, or
 * `Unavailable`).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * interface Poll { readonly group: string; readonly topic: string }
 *
 * const topics: Dispatcher.Factory<Poll, string> = {
 *   keyOf: (poll) => poll.topic,
 *   spawn: (child) => Dispatcher.serve(child, (poll) => Effect.succeed(`${poll.group}/${poll.topic}`))
 * }
 *
 * const groups: Dispatcher.Factory<Poll, string> = {
 *   keyOf: (poll) => poll.group,
 *   spawn: (child) => Dispatcher.runChild(child, topics, { name: "topics" })
 * }
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const runChild: <Req, Res, E, R>(
  spec: ChildSpec<Req, Res, E>,
  factory: Factory<Req, Res, E, R>,
  options?: Options
) => Effect.Effect<void, DispatchErrors.InvalidOptions, R> = downstream.runChild

/**
 * Accept a request: route it by key, spawning the child if needed. A full
 * mailbox fails `TooManyRequests` at once with nothing queued; a stopping or
 * stopped dispatcher fails `Unavailable`. Accepted, it gives the Deferred that
 * the child (or the dispatcher) completes exactly once.
 *
 * @example
 * ```ts
 * import { Deferred, Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * declare const dispatcher: Dispatcher.Dispatcher<string, string>
 *
 * const program = Effect.gen(function*() {
 *   const answer = yield* Dispatcher.send(dispatcher, "job")
 *   // ... do something else meanwhile
 *   return yield* Deferred.await(answer)
 * })
 * // or, data-last:
 * const sendJob = Dispatcher.send("job")
 * ```
 *
 * @since 0.1.0
 * @category requests
 */
export const send: {
  <Req>(request: Req): <Res, E>(
    self: Dispatcher<Req, Res, E>
  ) => Effect.Effect<
    Deferred.Deferred<Res, E | DispatchError>,
    DispatchErrors.TooManyRequests | DispatchErrors.Unavailable
  >
  <Req, Res, E>(
    self: Dispatcher<Req, Res, E>,
    request: Req
  ): Effect.Effect<
    Deferred.Deferred<Res, E | DispatchError>,
    DispatchErrors.TooManyRequests | DispatchErrors.Unavailable
  >
} = dual(2, <Req, Res, E>(self: Dispatcher<Req, Res, E>, request: Req) => {
  const implementation = handle.implementationOf(self)
  return implementation === undefined ? handle.notAHandle(self) : implementation.send(request)
})

/**
 * `send`, then wait for the answer.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * declare const dispatcher: Dispatcher.Dispatcher<string, string>
 *
 * const answer = Dispatcher.call(dispatcher, "job").pipe(Effect.timeout("1 second"))
 * // or, data-last:
 * const askJob = Dispatcher.call("job")
 * ```
 *
 * @since 0.1.0
 * @category requests
 */
export const call: {
  <Req>(request: Req): <Res, E>(self: Dispatcher<Req, Res, E>) => Effect.Effect<Res, E | DispatchError>
  <Req, Res, E>(self: Dispatcher<Req, Res, E>, request: Req): Effect.Effect<Res, E | DispatchError>
} = dual(2, <Req, Res, E>(self: Dispatcher<Req, Res, E>, request: Req) => {
  const implementation = handle.implementationOf(self)
  return implementation === undefined ? handle.notAHandle(self) : implementation.call(request)
})

/** What a handle's implementation gives, or the defect for something that is not a handle. */
const asked = <A>(
  self: Dispatcher<any, any, any>,
  ask: (implementation: Implementation<any, any, any>) => Effect.Effect<A>
): Effect.Effect<A> =>
  E.suspend(() => {
    const implementation = handle.implementationOf(self)
    return implementation === undefined ? handle.notAHandle(self) : ask(implementation)
  })

/**
 * Stop a root explicitly, the same as closing its Scope: end every mailbox,
 * wait for every child (up to `shutdownTimeout`, if set), answer what is left
 * `Unavailable`. Idempotent; returns once stopped.
 *
 * Called from inside one of the dispatcher's own children, at any depth and
 * however wrapped (in `Effect.scoped`, nested scopes, a forked fiber, or by
 * closing the Scope the dispatcher was made in), it begins the stop and
 * returns at once: waiting would be waiting for itself. That child is then
 * stopped like the others (its mailbox ends; it finishes what it holds).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * declare const dispatcher: Dispatcher.Dispatcher<string, string>
 *
 * const stopWithin = Dispatcher.shutdown(dispatcher).pipe(Effect.timeout("5 seconds"))
 * ```
 *
 * @since 0.1.0
 * @category lifecycle
 */
export const shutdown = (self: Dispatcher<any, any, any>): Effect.Effect<void> =>
  asked(self, (implementation) => implementation.shutdown)

/**
 * Wait until a root has stopped (Go: `Wait4Stop`); add `Effect.timeout` for a
 * bound. A downstream dispatcher has no handle: its end is the end of its
 * `runChild` effect.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * declare const dispatcher: Dispatcher.Dispatcher<string, string>
 *
 * const stopped = Dispatcher.awaitStop(dispatcher).pipe(Effect.timeout("10 seconds"))
 * ```
 *
 * @since 0.1.0
 * @category lifecycle
 */
export const awaitStop = (self: Dispatcher<any, any, any>): Effect.Effect<void> =>
  asked(self, (implementation) => implementation.awaitStop)

/**
 * A ready-made child body: take requests in order and answer each with the
 * exit of `handler(request, key)`, one at a time; return once the mailbox has
 * ended and is drained. With `idleTimeToLive`, the child also ends after that
 * long without a request (a request that races with the end is served by a
 * successor). Interrupted while a handler runs, it answers that request and
 * any it took after it `Unavailable`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * const factory: Dispatcher.Factory<number, number> = {
 *   keyOf: (n) => String(n % 10),
 *   spawn: (child) => Dispatcher.serve(child, (n) => Effect.succeed(n * 2), { idleTimeToLive: "1 minute" })
 * }
 * ```
 *
 * @since 0.1.0
 * @category children
 */
export const serve: <Req, Res, E, R>(
  child: ChildSpec<Req, Res, E>,
  handler: (request: Req, key: Key) => Effect.Effect<Res, E, R>,
  options?: ServeOptions
) => Effect.Effect<void, never, R> = served.serve

/**
 * `serve` as a ready `spawn`, with its options checked when the factory is
 * built rather than when a child starts: a bad `idleTimeToLive` or `onStop`
 * makes `make`, `layer` or `runChild` fail `InvalidOptions` naming it, before
 * any request is accepted.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * const sessions: Dispatcher.Factory<string, number> = {
 *   keyOf: (user) => user,
 *   spawn: Dispatcher.serveWith((user: string) => Effect.succeed(user.length), { idleTimeToLive: "15 seconds" })
 * }
 * ```
 *
 * @since 0.1.0
 * @category children
 */
export const serveWith: <Req, Res, E, R>(
  handler: (request: Req, key: Key) => Effect.Effect<Res, E, R>,
  options?: ServeOptions
) => (child: ChildSpec<Req, Res, E>) => Effect.Effect<void, never, R> = served.serveWith

/**
 * Go's `NewChildSpec4Test`: a `ChildSpec` with no dispatcher behind it, to
 * test a child alone. A bad capacity dies with `InvalidOptions`.
 *
 * @example
 * ```ts
 * import { Deferred, Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * const program = Effect.gen(function*() {
 *   const t = yield* Dispatcher.testChild<string, string>("greeter", 4)
 *   yield* Effect.forkChild(Dispatcher.serve(t.spec, (name) => Effect.succeed(`hi ${name}`)))
 *   return yield* Deferred.await(yield* t.offer("ada")) // "hi ada"
 * })
 * ```
 *
 * @since 0.1.0
 * @category testing
 */
export const testChild: <Req, Res = void, E = never>(
  key?: Key,
  capacity?: number
) => Effect.Effect<TestChild<Req, Res, E>> = testing.testChild

/**
 * A snapshot of what the dispatcher has done so far and what lives now.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * declare const dispatcher: Dispatcher.Dispatcher<string, string>
 *
 * const logStats = Effect.flatMap(Dispatcher.stats(dispatcher), (s) => Effect.log("dispatcher", s))
 * ```
 *
 * @since 0.1.0
 * @category observability
 */
export const stats = (self: Dispatcher<any, any, any>): Effect.Effect<Stats> =>
  asked(self, (implementation) => implementation.stats)

/**
 * The dispatcher and every dispatcher below it (`runChild`), as one snapshot:
 * each level's stats and live children.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * declare const groups: Dispatcher.Dispatcher<{ group: string; topic: string }, string>
 *
 * const report = Effect.flatMap(Dispatcher.tree(groups), (tree) => Effect.log(JSON.stringify(tree)))
 * ```
 *
 * @since 0.1.0
 * @category observability
 */
export const tree = (self: Dispatcher<any, any, any>): Effect.Effect<Tree> =>
  asked(self, (implementation) => implementation.tree)

/**
 * The live children: key, mailbox size and incarnation.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * declare const dispatcher: Dispatcher.Dispatcher<string, string>
 *
 * const keys = Effect.map(Dispatcher.children(dispatcher), (children) => children.map((c) => c.key))
 * ```
 *
 * @since 0.1.0
 * @category observability
 */
export const children = (self: Dispatcher<any, any, any>): Effect.Effect<ReadonlyArray<ChildInfo>> =>
  asked(self, (implementation) => implementation.children)

/**
 * End one key's child the way `maxChildren` makes room: its mailbox ends, so
 * the child drains what waits there (a `serve` child answers it) and ends; a
 * request for the key arriving meanwhile is accepted and served by a successor
 * once the old child has ended. Returns once that child has ended (at once
 * when called from inside one of the dispatcher's own children, as `shutdown`
 * does: waiting there could be waiting for oneself). Nothing is lost: what a child leaves in its
 * ended mailbox is answered `Unavailable`, as at a stop, and so are senders
 * still waiting for room in it (`overflow: { wait }`). A key waiting out a
 * restart delay has no child to drain its mailbox: what waits is answered
 * `Unavailable`. A key with no child, or a stopping dispatcher: nothing to do.
 *
 * For keys that leave this process (a tenant moved elsewhere, a shard handed
 * to another runner): `Sharded` runners passivate a key's child when their
 * runner no longer holds the key's shard. A handle whose implementation has no
 * `passivate` (a sharded handle on the calling side) does nothing.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * declare const tenants: Dispatcher.Dispatcher<{ readonly tenant: string }, string>
 *
 * // the tenant was deleted: its worker finishes what it holds and goes
 * const offboard = (tenant: string) => Dispatcher.passivate(tenants, tenant)
 * ```
 *
 * @since 0.1.0
 * @category lifecycle
 */
export const passivate: {
  (key: Key): (self: Dispatcher<any, any, any>) => Effect.Effect<void>
  (self: Dispatcher<any, any, any>, key: Key): Effect.Effect<void>
} = dual(
  2,
  (self: Dispatcher<any, any, any>, key: Key): Effect.Effect<void> =>
    asked(self, (implementation) => implementation.passivate?.(key) ?? E.void)
)

/**
 * The top `top` keys of the dispatcher and every dispatcher below it
 * (`runChild`), ranked by one measure, each with the path of the level that
 * serves it: which key is hot, which is stuck. O(n log k) over the n live
 * keys of the tree, with a bounded heap (no sort of all keys); only keys with
 * some of the measure (above 0) are listed, ties ordered by path, then key.
 *
 * Every figure is read from what the dispatcher keeps anyway: a call costs
 * one walk of the tree, and nothing is kept per request. A rate is the
 * difference between two looks at the tree `window` apart: the first call by
 * `"rate"` looks, waits one window and looks again; later calls measure from
 * the last look at least a window old. The dispatcher keeps its last two
 * looks (an array slot per key) until a later call replaces them. A key is
 * `stuck` once its oldest request is older than `stuckAfter` (default: its
 * level's `requestTimeout`).
 *
 * A handle whose implementation has no `hotKeys` answers `[]`. A `Sharded`
 * handle answers for the runners of the process it is asked in. Bad options
 * die with `InvalidOptions`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dispatcher } from "effect-dispatcher"
 *
 * declare const groups: Dispatcher.Dispatcher<{ readonly group: string; readonly topic: string }, string>
 *
 * const report = Effect.gen(function*() {
 *   const stuck = (yield* Dispatcher.hotKeys(groups, { top: 10, by: "oldest", stuckAfter: "5 seconds" }))
 *     .filter((k) => k.stuck)
 *   const busiest = yield* Dispatcher.hotKeys(groups, { top: 10, by: "rate" })
 *   for (const k of stuck) yield* Effect.logWarning(`stuck: ${k.path} ${k.key}, oldest ${k.oldest} ms`)
 *   return busiest
 * })
 * // or, data-last:
 * const deepest = Dispatcher.hotKeys({ top: 5, by: "depth" })
 * ```
 *
 * @since 0.1.0
 * @category observability
 */
export const hotKeys: {
  (options: HotKeysOptions): (self: Dispatcher<any, any, any>) => Effect.Effect<ReadonlyArray<KeyFigures>>
  (self: Dispatcher<any, any, any>, options: HotKeysOptions): Effect.Effect<ReadonlyArray<KeyFigures>>
} = dual(
  2,
  (self: Dispatcher<any, any, any>, options: HotKeysOptions): Effect.Effect<ReadonlyArray<KeyFigures>> =>
    asked(self, (implementation) => {
      const invalid = hotKeyOptions.resolveHotKeys(options)
      if (invalid instanceof DispatchErrors.InvalidOptions) return E.die(invalid)
      return implementation.hotKeys?.(options) ?? E.succeed([])
    })
)
