/**
 * The whole proxy as one Layer: the embedded log, the offsets, the consumer
 * tree, the inspector at `/_inspect` (`effect-dispatcher/Inspector`, on the
 * same router) and the HTTP server on `PIXY_HOST:PIXY_PORT`, given a `PixyConfig`.
 * `main.ts` launches it; the tests and the load bench build it in a Scope of
 * their own. It exposes the `HttpServer` (for the bound address) and the
 * services, so a test can look inside.
 *
 * Closing it is the graceful stop. Layers release in reverse order of
 * building, so the stop is built last, after the server is serving:
 *   1. the consumer tree stops (`Dispatcher.shutdown`): its topic consumers are
 *      interrupted at once, so polls in flight, and any that arrive now, are
 *      answered `503`, and the inspector's event streams end;
 *   2. the server stops accepting and waits for those answers to go out;
 *   3. the services are released (the tree's own Scope finds it stopped).
 * Without step 1 first, the server would wait for every long poll to time out.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, Option } from "effect"
import { HttpRouter } from "effect/http"
import { Dispatcher, Inspector } from "effect-dispatcher"
import { createServer } from "node:http"
import { PixyConfig } from "./Config.js"
import { Consumers } from "./Consumers.js"
import { Log } from "./Log.js"
import { Offsets } from "./Offsets.js"
import { Routes } from "./Routes.js"

/** The log, the offsets and the consumer tree. */
export const ServicesLive = Consumers.layer.pipe(
  Layer.provideMerge(Offsets.layer),
  Layer.provideMerge(Log.layer)
)

/** Node's HTTP server on the configured address. */
export const ServerLive = Layer.unwrap(
  PixyConfig.useSync((config) => NodeHttpServer.layer(createServer, { host: config.host, port: config.port }))
)

/**
 * The inspector of the consumer tree at `/_inspect`, on the proxy's own
 * router: the page, `/_inspect/state` and `/_inspect/events`. With
 * `PIXY_INSPECT_TOKEN` set, only requests with `Authorization: Bearer <token>`
 * may look (else 403); `PIXY_INSPECT=false` leaves it out.
 */
export const InspectorLive = Layer.unwrap(
  PixyConfig.useSync(({ inspect }) =>
    inspect.enabled
      ? Inspector.layer(Consumers, {
        prefix: "/_inspect",
        interval: inspect.interval,
        ...(Option.isSome(inspect.stuckAfter) ? { stuckAfter: inspect.stuckAfter.value } : {}),
        ...(Option.isSome(inspect.token) ? { authorize: Inspector.authorizeBearer(inspect.token.value) } : {})
      }).pipe(
        Layer.tap(() =>
          Effect.logInfo(
            `inspector at /_inspect${Option.isSome(inspect.token) ? " (asks for PIXY_INSPECT_TOKEN as a bearer token)" : ""}`
          )
        )
      )
      : Layer.empty
  )
)

/** Built last, released first: stop the consumers before the server stops. */
const StopConsumersFirst = Layer.effectDiscard(
  Effect.gen(function*() {
    const consumers = yield* Consumers
    yield* Effect.addFinalizer(() =>
      Effect.logInfo("stopping: polls in flight are answered 503").pipe(
        Effect.andThen(Dispatcher.shutdown(consumers)),
        Effect.andThen(Effect.logInfo("consumers stopped; closing the server"))
      )
    )
  })
)

export const ProxyLive = StopConsumersFirst.pipe(
  Layer.provide(HttpRouter.serve(Layer.mergeAll(Routes, InspectorLive), { disableLogger: true })),
  Layer.provideMerge(ServerLive),
  Layer.provideMerge(ServicesLive)
)
