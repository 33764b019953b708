/**
 * The inspector's routes on the application's own `HttpRouter`: the page, the
 * state as JSON, and the state as Server-Sent Events. Loaded by
 * `Inspector.layer` when the layer is built, so that importing the package
 * loads no HTTP module.
 */
import { Effect, Stream } from "effect"
import { Sse } from "effect/encoding"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import * as Dispatcher from "../../Dispatcher.js"
import { type Frame, Hub } from "./hub.js"
import type { ResolvedInspector } from "./options.js"
import { contentSecurityPolicy, page } from "./page.js"
import { Surveyor } from "./survey.js"

const common = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer"
}

const forbidden = HttpServerResponse.jsonUnsafe({ error: "forbidden" }, { status: 403, headers: common })

const tooManyClients = HttpServerResponse.jsonUnsafe(
  { error: "too many clients of the inspector's events" },
  { status: 503, headers: { ...common, "retry-after": "5" } }
)

const encoder = new TextEncoder()

const event = (frame: Frame): Uint8Array =>
  encoder.encode(
    Sse.encoder.write({ _tag: "Event", event: frame.last ? "end" : "message", id: undefined, data: frame.data })
  )

/** Tell an EventSource to wait 5 s before it reconnects, should the stream drop. */
const retry = encoder.encode("retry: 5000\n\n")

/**
 * Mount the inspector of `handle` on the current `HttpRouter`, its refresher
 * and its failure log living in the current Scope (the layer's).
 *
 * @internal
 */
export const mount = Effect.fn("Inspector.mount")(
  function*(handle: Dispatcher.Dispatcher<any, any, any>, options: ResolvedInspector) {
    const router = yield* HttpRouter.HttpRouter
    const surveyor = new Surveyor(handle, options)
    surveyor.start()
    yield* Effect.addFinalizer(() => Effect.sync(() => surveyor.stop()))
    const frame = Effect.map(surveyor.snapshot, (state): Frame => ({
      data: JSON.stringify(state),
      last: state.status === "stopped"
    })).pipe(Effect.withSpan("Inspector.refresh", { attributes: { "inspector.prefix": options.prefix || "/" } }))
    const hub = yield* Hub.make(frame, options.interval, () => surveyor.rest())
    // the dispatcher's stop ends every stream after a last frame, so no open stream holds a server's close
    yield* Dispatcher.awaitStop(handle).pipe(
      Effect.andThen(Effect.sync(() => {
        surveyor.stopped = true
      })),
      Effect.andThen(frame),
      Effect.flatMap((last) => Effect.sync(() => hub.close({ ...last, last: true }))),
      Effect.andThen(hub.stop),
      Effect.forkScoped
    )

    const allowed = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<boolean> => {
      const authorize = options.authorize
      if (authorize === undefined) return Effect.succeed(true)
      return Effect.suspend(() => {
        const verdict = authorize(request)
        return Effect.isEffect(verdict) ? verdict : Effect.succeed(verdict === true)
      }).pipe(
        Effect.map((verdict) => verdict === true),
        // a predicate that throws or dies lets nobody in
        Effect.catchCause(() => Effect.succeed(false))
      )
    }
    const guarded = <E, R>(
      name: string,
      respond: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
    ) =>
      Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
        Effect.flatMap(allowed(request), (ok) => {
          if (ok) return respond
          return Effect.as(
            Effect.logDebug("inspector: request refused by authorize").pipe(
              Effect.annotateLogs({ inspector: options.prefix || "/", route: name })
            ),
            forbidden
          )
        }))

    const html = page(options.prefix)
    const pageRoute = guarded(
      "page",
      Effect.succeed(
        HttpServerResponse.text(html, {
          contentType: "text/html; charset=utf-8",
          headers: { ...common, "content-security-policy": contentSecurityPolicy }
        })
      )
    )
    const stateRoute = guarded(
      "state",
      Effect.map(frame, (f) =>
        HttpServerResponse.text(f.data, { contentType: "application/json; charset=utf-8", headers: common }))
    )
    const eventsRoute = guarded(
      "events",
      Effect.gen(function*() {
        // registered in the request's Scope: it closes when the response ends or the client goes
        const client = yield* hub.connect()
        if (client === undefined) return tooManyClients
        yield* Effect.logDebug("inspector: events client connected").pipe(
          Effect.annotateLogs({ inspector: options.prefix || "/", clients: hub.size })
        )
        return HttpServerResponse.stream(
          Stream.concat(Stream.succeed(retry), Stream.map(Stream.fromQueue(client), event)),
          {
            contentType: "text/event-stream; charset=utf-8",
            // once the stream ends (a stop), the connection closes with it: a server closing then does not
            // wait for the client to drop an idle keep-alive connection
            headers: { ...common, "x-accel-buffering": "no", connection: "close" }
          }
        )
      })
    )
    const at = (path: string): HttpRouter.PathInput => `${options.prefix}${path}` as HttpRouter.PathInput
    yield* router.addAll([
      HttpRouter.route("GET", (options.prefix === "" ? "/" : options.prefix) as HttpRouter.PathInput, pageRoute),
      HttpRouter.route("GET", at("/state"), stateRoute),
      HttpRouter.route("GET", at("/events"), eventsRoute)
    ])
    yield* Effect.logDebug("inspector mounted").pipe(
      Effect.annotateLogs({ inspector: options.prefix || "/", dispatcher: surveyor.core?.path ?? "(other handle)" })
    )
    return hub
  }
)
