/**
 * The pixy proxy as a process of its own, and HTTP load on it with
 * autocannon: shared by `npm run bench:http` and `npm run test:browser`.
 */
import { Deferred, Effect, Fiber, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")

// -----------------------------------------------------------------------------
// autocannon (untyped CommonJS): the little of it used here
// -----------------------------------------------------------------------------

export interface Histogram {
  readonly average: number
  readonly p50: number
  readonly p99: number
  readonly total: number
}
export interface Result {
  readonly requests: Histogram
  readonly latency: Histogram
  readonly duration: number
  readonly errors: number
  readonly timeouts: number
  readonly non2xx: number
  readonly statusCodeStats: Record<string, { readonly count: number }>
}
interface RawRequest {
  method?: string
  path?: string
  body?: string
}
export interface LoadOptions {
  readonly url: string
  readonly connections: number
  readonly duration: number
  readonly timeout: number
  readonly requests: ReadonlyArray<{ readonly setupRequest: (request: RawRequest) => RawRequest }>
}
interface Instance {
  readonly stop: () => void
}
const autocannon = createRequire(import.meta.url)("autocannon") as (
  options: LoadOptions,
  done: (error: unknown, result: Result) => void
) => Instance

/** Run autocannon to its end; interrupted, it stops. */
export const load = (options: LoadOptions) =>
  Effect.callback<Result, Error>((resume) => {
    const instance = autocannon(options, (error, result) =>
      resume(error ? Effect.fail(new Error(String(error))) : Effect.succeed(result)))
    return Effect.sync(() => instance.stop())
  })

/** Every connection sends the n-th request as `requestFor` says, for `seconds`. */
export const phase = (
  url: string,
  connections: number,
  seconds: number,
  requestFor: (n: number) => { method: string; path: string; body?: string }
) => {
  let sent = 0
  return load({
    url,
    connections,
    duration: seconds,
    timeout: 10,
    requests: [{ setupRequest: (request) => ({ ...request, ...requestFor(sent++) }) }]
  })
}

// -----------------------------------------------------------------------------
// The proxy
// -----------------------------------------------------------------------------

/**
 * `examples/pixy/main.ts` on this Node (with tsx) on a free port, with `env`
 * on top of this process's: its URL, every line it logged so far, and how to
 * stop it as an operator would (SIGTERM; its exit code). Killed with the Scope.
 */
export const startPixy = (env: Record<string, string>) =>
  Effect.gen(function*() {
    const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
    const proxy = yield* spawner.spawn(
      ChildProcess.make(process.execPath, ["--import", "tsx", "examples/pixy/main.ts"], {
        cwd: root,
        extendEnv: true,
        env: { PIXY_PORT: "0", ...env }
      })
    )
    // read its log to the end (a full pipe would stall it), noting the address
    const listening = yield* Deferred.make<string>()
    const lines: Array<string> = []
    const reader = yield* proxy.all.pipe(
      Stream.decodeText(),
      Stream.splitLines,
      Stream.runForEach((line) =>
        Effect.gen(function*() {
          lines.push(line)
          const url = /Listening on (http:\/\/\S+)/.exec(line)?.[1]
          if (url !== undefined) yield* Deferred.succeed(listening, url)
        })
      ),
      Effect.forkScoped
    )
    const url = yield* Deferred.await(listening).pipe(
      Effect.timeoutOrElse({
        duration: "60 seconds",
        orElse: () => Effect.die(new Error(`the proxy did not start:\n${lines.join("\n")}`))
      })
    )
    const stop = Effect.gen(function*() {
      yield* proxy.kill({ killSignal: "SIGTERM", forceKillAfter: "30 seconds" })
      const exitCode = Number(yield* proxy.exitCode)
      yield* Fiber.await(reader).pipe(Effect.timeout("5 seconds"), Effect.ignore)
      return exitCode
    })
    return { url, lines, stop }
  })
