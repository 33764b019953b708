/**
 * The proxy under test: `ProxyLive` built from `PIXY_*` settings (port 0, a
 * free one) in a Scope the test controls, and a small HTTP client over real
 * sockets (undici).
 */
import { ConfigProvider, Context, Effect, Exit, Layer, Metric, References, Scope } from "effect"
import { NodeHttpClient } from "@effect/platform-node"
import { HttpClient, HttpClientRequest, HttpServer } from "effect/http"
import type { Dispatcher } from "effect-dispatcher"
import { PixyConfig } from "../../examples/pixy/Config.js"
import { Consumers } from "../../examples/pixy/Consumers.js"
import { ProxyLive } from "../../examples/pixy/Proxy.js"

export interface Reply {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: any
}

export interface Message {
  readonly key: string | null
  readonly value: string
  readonly partition: number
  readonly offset: number
}

export interface Proxy {
  readonly url: string
  /** close the proxy's Scope: the graceful stop */
  readonly stop: Effect.Effect<void>
  readonly consumers: Consumers["Service"]
  readonly request: (method: "GET" | "POST", path: string, body?: string) => Effect.Effect<Reply>
  readonly produce: (topic: string, value: string, key?: string) => Effect.Effect<number>
  /** one long poll; `noAck` for auto-ack */
  readonly consume: (topic: string, group: string, query?: string) => Effect.Effect<Reply>
  readonly ack: (topic: string, group: string, offset: number) => Effect.Effect<Reply>
  /** `GET /_stats`: the dispatcher tree, groups at the root, topics below */
  readonly tree: Effect.Effect<Dispatcher.Tree>
  /** the HTTP client the helpers use (undici), for requests of one's own (streams) */
  readonly client: HttpClient.HttpClient
}

/** Counts the fibers the proxy starts and ends (every fiber made with its services). */
export class FiberCount {
  started = 0
  ended = 0
  get active(): number {
    return this.started - this.ended
  }
  readonly service: Metric.FiberRuntimeMetricsService = {
    recordFiberStart: () => {
      this.started++
    },
    recordFiberEnd: () => {
      this.ended++
    }
  }
}

/** Start a proxy with these `PIXY_*` variables (on a free port); it stops with the test's Scope. */
export const startProxy = (env: Record<string, string> = {}, options?: { readonly fibers?: FiberCount }) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    const config = PixyConfig.layer.pipe(
      Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env: { PIXY_PORT: "0", ...env } })))
    )
    const context = yield* Layer.buildWithScope(
      ProxyLive.pipe(
        Layer.provide(config),
        Layer.provide(Layer.succeed(References.MinimumLogLevel, "Warn")),
        Layer.provide(
          options?.fibers === undefined ? Layer.empty : Layer.succeed(Metric.FiberRuntimeMetrics, options.fibers.service)
        )
      ),
      scope
    )
    const url = HttpServer.formatAddress(Context.get(context, HttpServer.HttpServer).address)
    // built in the caller's Scope: the client lives as long as the test
    const client = Context.get(yield* Layer.build(NodeHttpClient.layerUndici), HttpClient.HttpClient)

    const request = (method: "GET" | "POST", path: string, body?: string): Effect.Effect<Reply> =>
      Effect.gen(function*() {
        let req = method === "GET" ? HttpClientRequest.get(url + path) : HttpClientRequest.post(url + path)
        if (body !== undefined) req = HttpClientRequest.bodyText(req, body)
        const response = yield* client.execute(req)
        const text = yield* response.text
        return { status: response.status, headers: response.headers, body: text === "" ? undefined : JSON.parse(text) }
      }).pipe(Effect.orDie)

    const proxy: Proxy = {
      url,
      stop: Scope.close(scope, Exit.void),
      consumers: Context.get(context, Consumers),
      request,
      produce: (topic, value, key) =>
        Effect.map(
          request("POST", `/topics/${topic}/messages${key === undefined ? "" : `?key=${key}`}`, value),
          (reply) => reply.body.offset as number
        ),
      consume: (topic, group, query) =>
        request("GET", `/topics/${topic}/messages?group=${group}${query === undefined ? "" : `&${query}`}`),
      ack: (topic, group, offset) => request("POST", `/topics/${topic}/acks?group=${group}&partition=0&offset=${offset}`),
      tree: Effect.map(request("GET", "/_stats"), (reply) => reply.body as Dispatcher.Tree),
      client
    }
    return proxy
  })

export const decode = (base64: string): string => Buffer.from(base64, "base64").toString("utf8")

/** Milliseconds an effect took, with its result. */
export const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const start = Date.now()
    const value = yield* effect
    return [value, Date.now() - start] as const
  })

/** Retry `check` every 25 ms until it holds, for at most `millis`. */
export const eventually = <R>(check: Effect.Effect<boolean, never, R>, millis = 3_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + millis
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`not true within ${millis} ms`))
      yield* Effect.sleep("25 millis")
    }
  })
