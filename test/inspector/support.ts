/**
 * The inspector's routes without a server: the router as an HTTP effect
 * (`HttpRouter.toHttpEffect`), asked with requests made from web `Request`s,
 * so tests run on the TestClock.
 */
import { Effect, Fiber, type Layer, Queue, type Scope, Stream } from "effect"
import { HttpRouter, HttpServerRequest, type HttpServerResponse } from "effect/http"
import { Dispatcher } from "../../src/index.js"

export interface Answer {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly text: string
}

/** What a request to the routes answers, the body read whole (not for the events). */
export const bodyText = (response: HttpServerResponse.HttpServerResponse): string => {
  const body = response.body
  switch (body._tag) {
    case "Uint8Array":
      return body.text ?? new TextDecoder().decode(body.body)
    case "Empty":
      return ""
    default:
      throw new Error(`unexpected body ${body._tag}`)
  }
}

/** One event of the stream: its name and data. */
export interface Event {
  readonly event: string
  readonly data: string
}

/** Events in SSE text, as a browser's EventSource reads them. */
export const parseEvents = (text: string): Array<Event> =>
  text.split("\n\n").filter((block) => block.includes("data:")).map((block) => {
    const lines = block.split("\n")
    const event = lines.find((l) => l.startsWith("event: "))?.slice(7) ?? "message"
    const data = lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n")
    return { event, data }
  })

/** Build `routes` into a router and answer requests with it. */
export const routesOf = <E>(routes: Layer.Layer<never, E, HttpRouter.HttpRouter>) =>
  Effect.gen(function*() {
    const handler = yield* HttpRouter.toHttpEffect(routes)
    const ask = (path: string, headers?: Record<string, string>) =>
      handler.pipe(
        Effect.provideService(
          HttpServerRequest.HttpServerRequest,
          HttpServerRequest.fromWeb(new Request(`http://inspector.test${path}`, headers === undefined ? {} : { headers }))
        )
      )
    const get = (path: string, headers?: Record<string, string>): Effect.Effect<Answer> =>
      Effect.scoped(
        Effect.map(ask(path, headers), (response) => ({
          status: response.status,
          headers: response.headers,
          text: bodyText(response)
        }))
      ).pipe(Effect.orDie)
    /**
     * Follow `/events` in the caller's Scope (the request's: closing it is the
     * client going): the events arrive in the queue as they are sent.
     */
    const follow = (path: string, headers?: Record<string, string>) =>
      Effect.gen(function*() {
        const response = yield* Effect.orDie(ask(path, headers))
        const events = yield* Queue.unbounded<Event, unknown>()
        if (response.body._tag !== "Stream") {
          return { response, events, ended: Effect.void, text: bodyText(response) }
        }
        const decoder = new TextDecoder()
        let pending = ""
        const reader = yield* response.body.stream.pipe(
          Stream.runForEach((chunk) =>
            Effect.sync(() => {
              pending += decoder.decode(chunk)
              const cut = pending.lastIndexOf("\n\n")
              if (cut < 0) return
              for (const e of parseEvents(pending.slice(0, cut + 2))) Queue.offerUnsafe(events, e)
              pending = pending.slice(cut + 2)
            })
          ),
          Effect.ensuring(Effect.sync(() => Queue.endUnsafe(events))),
          Effect.forkScoped
        )
        return { response, events, ended: Effect.asVoid(Fiber.await(reader)), text: "" }
      })
    /** Ask, and keep the answer open in the caller's Scope without reading its body (a client that reads nothing). */
    const open = (path: string, headers?: Record<string, string>) => Effect.orDie(ask(path, headers))
    return { get, follow, open }
  })

export type Routes = Effect.Success<ReturnType<typeof routesOf>>

/** Jobs keyed by `key`: a `hang` job's handler never returns; a key starting with "crash" has children that fail as they start. */
export interface Job {
  readonly key: string
  readonly hang?: boolean
}

/** A dispatcher of jobs; a stop interrupts what never ends. */
export const jobs = (options?: Dispatcher.Options): Effect.Effect<
  Dispatcher.Dispatcher<Job, string, string>,
  Dispatcher.InvalidOptions,
  Scope.Scope
> =>
  Dispatcher.make<Job, string, string>({
    keyOf: (job) => job.key,
    spawn: (child) =>
      child.key.startsWith("crash")
        ? Effect.fail(`the child for ${child.key} could not start`)
        : Dispatcher.serve(child, (job: Job) => (job.hang ? Effect.never : Effect.succeed("done")))
  }, { shutdownTimeout: 0, ...options })
