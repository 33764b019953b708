/**
 * The inspector for bench/options.ts, without a server: mounted on an
 * in-memory router (`HttpRouter.layer`), and, for "a page open", one client
 * following `/_inspect/events` through the router's HTTP effect (what a page
 * costs the process, less the socket writes). And the time one refresh takes
 * on a tree of 100,000 live keys in three levels.
 */
import { Context, Effect, Layer, type Scope, Stream } from "effect"
import { HttpRouter, HttpServerRequest } from "effect/http"
import { Dispatcher, Inspector } from "effect-dispatcher"

/** What a page costs: only mounted, or mounted with a client following the events at `interval`. */
export type InspectorMode = "mounted" | "page"

const request = (path: string) => HttpServerRequest.fromWeb(new Request(`http://bench.local${path}`))

/** The router's HTTP effect with the inspector of `dispatcher` mounted, in the current Scope. */
export const mounted = (
  dispatcher: Dispatcher.Dispatcher<any, any, any>,
  options: Inspector.Options = {}
) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(Inspector.layer(dispatcher, options).pipe(Layer.provideMerge(HttpRouter.layer))).pipe(
      Effect.orDie
    )
    return Context.get(context, HttpRouter.HttpRouter).asHttpEffect()
  })

/** Mount the inspector of `dispatcher`; with `"page"`, follow its events (every second) in a fiber of the Scope. */
export const attachInspector = (mode: InspectorMode) =>
(dispatcher: Dispatcher.Dispatcher<any, any, any>): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    const http = yield* mounted(dispatcher, { interval: "1 second" })
    if (mode === "mounted") return
    const response = yield* http.pipe(
      Effect.provideService(HttpServerRequest.HttpServerRequest, request("/_inspect/events")),
      Effect.orDie
    )
    if (response.body._tag !== "Stream") return yield* Effect.die(new Error("no event stream"))
    yield* Effect.forkScoped(Stream.runDrain(response.body.stream))
  }).pipe(Effect.orDie)

interface Leaf {
  readonly group: string
  readonly topic: string
  readonly partition: string
}

/**
 * A tree of three levels, `groups` x `topics` x `partitions` live leaves
 * (10 x 100 x 100: 100,000 leaves, 101,010 live keys in all), each leaf an
 * idle `serve` child that answered one request.
 */
export const threeLevels = (groups = 10, topics = 100, partitions = 100) =>
  Effect.gen(function*() {
    const leaves: Dispatcher.Factory<Leaf, number> = {
      keyOf: (r) => r.partition,
      spawn: Dispatcher.serveWith(() => Effect.succeed(1))
    }
    const middle: Dispatcher.Factory<Leaf, number> = {
      keyOf: (r) => r.topic,
      spawn: (child) => Dispatcher.runChild(child, leaves, { name: "partitions" })
    }
    const root = yield* Dispatcher.make<Leaf, number>({
      keyOf: (r) => r.group,
      spawn: (child) => Dispatcher.runChild(child, middle, { name: "topics" })
    }, { name: "groups" })
    for (let g = 0; g < groups; g++) {
      for (let t = 0; t < topics; t++) {
        yield* Effect.forEach(
          Array.from({ length: partitions }, (_, p) => ({ group: `g${g}`, topic: `t${t}`, partition: `p${p}` })),
          (leaf) => Dispatcher.call(root, leaf),
          { concurrency: "unbounded", discard: true }
        )
      }
    }
    return root
  })

/** CPU time of this process in millis. */
export const cpuMillis = (): number => {
  const usage = process.cpuUsage()
  return (usage.user + usage.system) / 1_000
}

/**
 * On a three-level tree of 100,000 live leaves: the time one refresh takes
 * (a look at the whole tree and its JSON, as `/state` answers it), and this
 * process's CPU per second with no inspector, with the inspector mounted and
 * no client, and with a page open at 1 Hz.
 */
export const refreshFigures = (options: { readonly refreshes: number; readonly idleSeconds: number }) =>
  Effect.gen(function*() {
    const root = yield* threeLevels()
    const tree = yield* Dispatcher.tree(root)
    const keys = tree.children.reduce(
      (n, g) => n + 1 + (g.downstream?.children.reduce((m, t) => m + 1 + (t.downstream?.children.length ?? 0), 0) ?? 0),
      0
    )
    // CPU with no inspector at all, for comparison, once the building has settled (its garbage collected)
    ;(globalThis as { gc?: () => void }).gc?.()
    yield* Effect.sleep("2 seconds")
    const unmounted = yield* cpuOver(options.idleSeconds)
    const http = yield* mounted(root, { interval: "1 second" })
    const state = Effect.scoped(
      http.pipe(Effect.provideService(HttpServerRequest.HttpServerRequest, request("/_inspect/state")), Effect.orDie)
    )
    const times: Array<number> = []
    let bytes = 0
    for (let i = 0; i < options.refreshes + 3; i++) {
      const start = performance.now()
      const response = yield* state
      const millis = performance.now() - start
      if (response.body._tag === "Uint8Array") bytes = response.body.contentLength
      if (i >= 3) times.push(millis)
    }
    // CPU with nobody looking (the refreshes' garbage collected first), then with a page open at 1 Hz
    ;(globalThis as { gc?: () => void }).gc?.()
    yield* Effect.sleep("2 seconds")
    const idle = yield* cpuOver(options.idleSeconds)
    const page = yield* Effect.scoped(
      Effect.gen(function*() {
        const response = yield* http.pipe(
          Effect.provideService(HttpServerRequest.HttpServerRequest, request("/_inspect/events")),
          Effect.orDie
        )
        if (response.body._tag === "Stream") yield* Effect.forkScoped(Stream.runDrain(response.body.stream))
        return yield* cpuOver(options.idleSeconds)
      })
    )
    times.sort((a, b) => a - b)
    return {
      keys,
      refreshMedianMillis: times[Math.floor(times.length / 2)]!,
      refreshMaxMillis: times.at(-1)!,
      stateBytes: bytes,
      cpuPerSecondUnmounted: unmounted,
      cpuPerSecondNoClient: idle,
      cpuPerSecondPage: page
    }
  })

/** This process's CPU millis per second over `seconds` of waiting. */
const cpuOver = (seconds: number) =>
  Effect.gen(function*() {
    const start = cpuMillis()
    yield* Effect.sleep(seconds * 1_000)
    return (cpuMillis() - start) / seconds
  })
