/**
 * A live, read-only inspector of a dispatcher tree, mounted on your own HTTP
 * router (`effect/http`'s `HttpRouter`): no second server, nothing exposed
 * unless you mount it.
 *
 * - `GET <prefix>`: one self-contained HTML page (inline CSS and JavaScript,
 *   no CDN, works offline): the tree of dispatchers, live counters, a
 *   throughput chart per level, the top hot and stuck keys with their ages,
 *   and the recent failures with their causes.
 * - `GET <prefix>/state`: the same as JSON (`State`).
 * - `GET <prefix>/events`: the state as Server-Sent Events, every `interval`.
 *
 * Output is bounded: the top keys only (never all keys), at most 100
 * dispatchers listed, the last 20 failures. Keys pass through `redact` before
 * they leave the process; `authorize` decides who may look. Nothing is
 * computed while no page is open: the refresher runs only while a client
 * follows the events, and a slow client skips frames (a buffer of one frame
 * each) rather than hold anything.
 *
 * Importing this module loads no HTTP module: the routes load when the layer
 * is built.
 *
 * @module effect-dispatcher/Inspector
 * @since 0.1.0
 */
import type { Context, Duration, Layer, Schema } from "effect"
import { Effect, Layer as L, Redacted } from "effect"
import type { HttpRouter, HttpServerRequest } from "effect/http"
import type * as Dispatcher from "./Dispatcher.js"
import type { InvalidOptions } from "./DispatchError.js"
import { TypeId } from "./internal/handle.js"
import { resolveInspector } from "./internal/inspector/options.js"
import { StateSchema } from "./internal/inspector/state.js"

/**
 * How the inspector is mounted. Every option is checked when the layer is
 * built: a bad one fails it with `InvalidOptions` naming it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Inspector } from "effect-dispatcher"
 *
 * const options: Inspector.Options = {
 *   prefix: "/_inspect",
 *   interval: "1 second",
 *   top: 10,
 *   stuckAfter: "5 seconds",
 *   // user ids never leave the process: only a short hash of them
 *   redact: (key) => `user-${key.length}-${[...key].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7).toString(16)}`,
 *   authorize: Inspector.authorizeBearer("s3cret")
 * }
 * const alsoAnEffect: Inspector.Options = {
 *   authorize: (request) => Effect.succeed(request.headers["x-team"] === "ops")
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Where the routes go: the page at `prefix`, then `prefix/state` and `prefix/events`; default `/_inspect` */
  readonly prefix?: string
  /** How often the events stream sends the state (and how rates are measured); default 1 second, at least 10 ms */
  readonly interval?: Duration.Input
  /** How many keys each list shows (hot by each measure, stuck); default 10, at most 100 */
  readonly top?: number
  /** A key is stuck once its oldest request is older than this; default: each level's `requestTimeout` */
  readonly stuckAfter?: Duration.Input
  /**
   * What is shown of a key, applied to every key before anything leaves the
   * process: in the lists, in the dispatchers' paths (which name the keys of
   * the levels above), and in the failures' causes (where the key appears in
   * the text). Default: the key itself (cut at 200 characters). A cause that
   * carries other user data is shown as Effect prints it.
   */
  readonly redact?: (key: Dispatcher.Key) => string
  /**
   * Whether a request may look (all three routes); refused, it gets `403`.
   * A predicate that throws or dies refuses. Default: everyone who can reach
   * the router.
   */
  readonly authorize?: (request: HttpServerRequest.HttpServerRequest) => boolean | Effect.Effect<boolean>
}

/**
 * One snapshot of a dispatcher tree, as `/state` answers and each event
 * carries: bounded (top keys only, at most 100 dispatchers listed, the last 20
 * failures), keys as `redact` shows them.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Inspector } from "effect-dispatcher"
 *
 * declare const body: unknown // what GET /_inspect/state answered
 *
 * const state = Schema.decodeUnknownSync(Inspector.State)(body)
 * const stuck = state.stuck.map((k) => `${k.path} ${k.key}: ${k.oldest} ms`)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface State {
  /** the root's name */
  readonly name: string
  readonly status: "running" | "stopping" | "stopped"
  /** Clock millis of this snapshot */
  readonly at: number
  /** millis between events */
  readonly interval: number
  /** the length of each list */
  readonly top: number
  /** millis; `null`: each level's `requestTimeout` */
  readonly stuckAfter: number | null
  /** live keys at every level */
  readonly keys: number
  /** each depth of the tree, its dispatchers added up (the root is depth 0) */
  readonly levels: ReadonlyArray<LevelState>
  /** the dispatchers, depth first (at most 100) */
  readonly dispatchers: ReadonlyArray<DispatcherState>
  /** dispatchers not listed */
  readonly omittedDispatchers: number
  /** the top keys by each measure, at every level */
  readonly hot: {
    readonly depth: ReadonlyArray<Dispatcher.KeyFigures>
    readonly oldest: ReadonlyArray<Dispatcher.KeyFigures>
    readonly rate: ReadonlyArray<Dispatcher.KeyFigures>
    readonly failures: ReadonlyArray<Dispatcher.KeyFigures>
  }
  /** the stuck keys, oldest first */
  readonly stuck: ReadonlyArray<Dispatcher.KeyFigures>
  /** the last failures of children since the inspector was mounted, newest first */
  readonly failures: ReadonlyArray<FailureState>
}

/**
 * One depth of the tree in a `State`: every dispatcher at that depth added up.
 *
 * @example
 * ```ts
 * import type { Inspector } from "effect-dispatcher"
 *
 * const line = (level: Inspector.LevelState) => `${level.names.join(",")}: ${level.rate} req/s over ${level.dispatchers} dispatchers`
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface LevelState {
  readonly depth: number
  /** the names of its dispatchers */
  readonly names: ReadonlyArray<string>
  readonly dispatchers: number
  readonly keys: number
  readonly live: number
  readonly accepted: number
  /** requests accepted per second since the previous snapshot */
  readonly rate: number
  readonly failures: number
  readonly withdrawn: number
  readonly rejected: Dispatcher.Stats["rejected"]
}

/**
 * One dispatcher of the tree in a `State`.
 *
 * @example
 * ```ts
 * import type { Inspector } from "effect-dispatcher"
 *
 * const line = (d: Inspector.DispatcherState) => `${"  ".repeat(d.depth)}${d.path}: ${d.live} live`
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface DispatcherState {
  /** its path, keys redacted */
  readonly path: string
  readonly name: string
  readonly depth: number
  readonly keys: number
  readonly live: number
  readonly accepted: number
  /** requests accepted per second since the previous snapshot */
  readonly rate: number
  readonly failures: number
  readonly rejected: Dispatcher.Stats["rejected"]
}

/**
 * A child that failed, in a `State`.
 *
 * @example
 * ```ts
 * import type { Inspector } from "effect-dispatcher"
 *
 * const line = (f: Inspector.FailureState) => `${f.path} ${f.key}${f.gaveUp ? " (gave up)" : ""}: ${f.cause.split("\n")[0]}`
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface FailureState {
  /** Clock millis when it ended */
  readonly at: number
  /** the dispatcher it was a child of */
  readonly path: string
  readonly key: string
  /** which child of the key it was (1, then +1 per successor) */
  readonly incarnation: number
  /** no successor follows: its restart schedule gave up, or it died before taking a request */
  readonly gaveUp: boolean
  /** the cause as Effect prints it, keys redacted, cut at 2,000 characters */
  readonly cause: string
}

/**
 * The Schema of `State`, to decode what `/state` and `/events` send.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Inspector } from "effect-dispatcher"
 *
 * const decode = Schema.decodeUnknownSync(Schema.fromJsonString(Inspector.State))
 * declare const data: string // one event's data
 * const state = decode(data)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const State: Schema.Codec<State> = StateSchema

/** The routes, loaded when a layer is built: never by the package index. */
const routes = Effect.promise(() => import("./internal/inspector/routes.js"))

/**
 * Mount the inspector of a dispatcher (a handle, or the service tag it is
 * provided under) on the application's own `HttpRouter`: `GET <prefix>` (the
 * page), `GET <prefix>/state` (JSON) and `GET <prefix>/events` (Server-Sent
 * Events every `interval`). Read-only.
 *
 * Nothing runs while no page is open; with one open, one refresh every
 * `interval` walks the tree once for every client. The events stream ends
 * when its client goes, when the dispatcher stops (after a last event named
 * `end`), or when this layer is released. Any handle works: an in-process one
 * is read in one walk, with its recent failures; another (a `Sharded` handle)
 * through its `tree` and `hotKeys`.
 *
 * @example
 * ```ts
 * import { NodeHttpServer } from "@effect/platform-node"
 * import { Context, Effect, Layer } from "effect"
 * import { HttpRouter, HttpServerResponse } from "effect/http"
 * import { Dispatcher, Inspector } from "effect-dispatcher"
 * import { createServer } from "node:http"
 *
 * class Ledger extends Context.Service<Ledger, Dispatcher.Dispatcher<string, number>>()("app/Ledger") {}
 *
 * const LedgerLive = Dispatcher.layer(Ledger, {
 *   keyOf: (user: string) => user,
 *   spawn: Dispatcher.serveWith((user: string) => Effect.succeed(user.length))
 * }, { name: "ledger", requestTimeout: "5 seconds" })
 *
 * const AppRoutes = HttpRouter.add("GET", "/health", HttpServerResponse.text("ok"))
 *
 * // the inspector on the app's own router, for whoever holds the token
 * const InspectorRoutes = Inspector.layer(Ledger, {
 *   prefix: "/_inspect",
 *   authorize: Inspector.authorizeBearer(process.env.INSPECT_TOKEN ?? "")
 * })
 *
 * const Server = HttpRouter.serve(Layer.mergeAll(AppRoutes, InspectorRoutes)).pipe(
 *   Layer.provide(LedgerLive),
 *   Layer.provide(NodeHttpServer.layer(createServer, { port: 8080 }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: {
  <Self, Req, Res, E>(
    tag: Context.Key<Self, Dispatcher.Dispatcher<Req, Res, E>>,
    options?: Options
  ): Layer.Layer<never, InvalidOptions, HttpRouter.HttpRouter | Self>
  <Req, Res, E>(
    handle: Dispatcher.Dispatcher<Req, Res, E>,
    options?: Options
  ): Layer.Layer<never, InvalidOptions, HttpRouter.HttpRouter>
} = (
  target: Context.Key<unknown, Dispatcher.Dispatcher<any, any, any>> | Dispatcher.Dispatcher<any, any, any>,
  options?: Options
): Layer.Layer<never, InvalidOptions, any> =>
  L.effectDiscard(Effect.gen(function*() {
    const resolved = yield* resolveInspector(options)
    const handle = typeof target === "object" && target !== null && TypeId in target
      ? target
      : yield* Effect.service(target as Context.Key<unknown, Dispatcher.Dispatcher<any, any, any>>)
    const { mount } = yield* routes
    yield* mount(handle, resolved)
  }))

/**
 * An `authorize` predicate that lets in the requests carrying
 * `Authorization: Bearer <token>` (compared in constant time). An empty
 * token lets nobody in.
 *
 * @example
 * ```ts
 * import { Config, Effect, Layer, Redacted } from "effect"
 * import { Dispatcher, Inspector } from "effect-dispatcher"
 *
 * declare const consumers: Dispatcher.Dispatcher<string, string>
 *
 * // curl -H "Authorization: Bearer $INSPECT_TOKEN" http://127.0.0.1:8080/_inspect/state
 * const InspectorRoutes = Layer.unwrap(
 *   Effect.map(Config.Redacted("INSPECT_TOKEN"), (token) =>
 *     Inspector.layer(consumers, { authorize: Inspector.authorizeBearer(token) }))
 * )
 * // without the token: 403 {"error":"forbidden"}
 * const plain = Inspector.authorizeBearer(Redacted.make("s3cret"))
 * ```
 *
 * @since 0.1.0
 * @category authorization
 */
export const authorizeBearer = (
  token: string | Redacted.Redacted<string>
): (request: HttpServerRequest.HttpServerRequest) => boolean => {
  const expected = `Bearer ${typeof token === "string" ? token : Redacted.value(token)}`
  const empty = expected === "Bearer "
  return (request) => {
    const given = request.headers["authorization"]
    return !empty && typeof given === "string" && sameText(given, expected)
  }
}

/** Compare in time that depends on the expected length only. */
const sameText = (given: string, expected: string): boolean => {
  let diff = given.length ^ expected.length
  for (let i = 0; i < expected.length; i++) diff |= (given.charCodeAt(i) | 0) ^ expected.charCodeAt(i)
  return diff === 0
}
