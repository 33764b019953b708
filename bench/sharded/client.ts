/**
 * The calling process of the sharded benchmark: `CALLERS` callers, each
 * calling a random one of `KEYS` keys in a loop, for `WARMUP` seconds, then
 * `SECONDS` measured. It prints `START` as the measured window opens and
 * `RESULT <json>` at its end: calls, calls/s, p50/p99 latency, failures, and
 * this process's CPU seconds. With `TURNS=1` it prints `READY` once every key
 * was called, then runs such a window for each line written to its stdin
 * (`--turns`: raw and Sharded take turns on one machine, both stacks up).
 * `IMPL=inprocess` runs the same loop on an in-process `Dispatcher.make`
 * root, for scale.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Context, Effect, Fiber, Layer, References } from "effect"
import { Dispatcher, Sharded } from "effect-dispatcher"
import { echo, env, exitWithParent, type Impl, type Mode, type Ping, rawCluster, rawEntity, settings, shardedEntity } from "./shared.js"

exitWithParent()
const impl = env("IMPL") as Impl | "inprocess"
const mode = (process.env["MODE"] ?? "volatile") as Mode
const callers = Number(env("CALLERS"))
const keys = Number(env("KEYS"))
const seconds = Number(env("SECONDS"))
const warmup = Number(env("WARMUP"))
/** `TURNS=1`: after calling every key once, run a window for each line the orchestrator writes to stdin */
const controlled = process.env["TURNS"] === "1"

/** The next line on stdin (a turn). */
const lines: Array<string> = []
let waiting: (() => void) | undefined
process.stdin.on("data", (chunk: Buffer) => {
  for (const line of chunk.toString().split("\n")) if (line.trim() !== "") lines.push(line)
  waiting?.()
})
const nextLine = Effect.callback<string>((resume) => {
  const take = () => {
    if (lines.length === 0) return false
    waiting = undefined
    resume(Effect.succeed(lines.shift()!))
    return true
  }
  if (!take()) waiting = () => void take()
})

class Handle extends Context.Service<Handle, (ping: Ping) => Effect.Effect<number, unknown>>()("bench/Handle") {}

const handleLayer: Layer.Layer<Handle, unknown> = (impl === "inprocess"
  ? Layer.effect(Handle, Effect.map(Dispatcher.make(echo, { mailboxCapacity: 64 }), (d) => (ping: Ping) => Dispatcher.call(d, ping)))
  : impl !== "sharded"
  ? Layer.effect(
    Handle,
    Effect.map(rawEntity(mode).client, (clientFor) => (ping: Ping) => clientFor(ping.key).Echo(ping))
  ).pipe(Layer.provide(rawCluster(impl, env("DATABASE_URL"), settings, true)))
  : Layer.effect(
    Handle,
    Effect.gen(function*() {
      class Echoes extends Context.Service<Echoes, Dispatcher.Dispatcher<Ping, number>>()("bench/Echoes") {}
      const context = yield* Layer.build(Sharded.layer(Echoes, shardedEntity(mode)))
      const d = Context.get(context, Echoes)
      return (ping: Ping) => Dispatcher.call(d, ping)
    })
  ).pipe(Layer.provide(Sharded.layerPostgres({ url: env("DATABASE_URL"), clientOnly: true, shardingConfig: settings })))) as Layer.Layer<Handle, unknown>

const percentile = (sorted: Float64Array, p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN

const program = Effect.gen(function*() {
  const call = yield* Handle
  // every key once, so the measured window does not time the first spawns (nor a shard map still settling)
  yield* Effect.forEach(
    Array.from({ length: keys }, (_, i) => i),
    (i) => call({ key: `k${i}`, n: i }).pipe(Effect.retry({ times: 50 }), Effect.ignore),
    { concurrency: callers }
  )
  // one window: the callers run `warm` seconds unmeasured, then `measured` seconds measured, then stop
  const window = (warm: number, measured: number) =>
    Effect.gen(function*() {
      let measuring = false
      let stop = false
      const latencies: Array<number> = []
      let failures = 0
      const caller = Effect.gen(function*() {
        while (!stop) {
          const n = Math.floor(Math.random() * keys)
          const started = performance.now()
          const exit = yield* Effect.exit(call({ key: `k${n}`, n }))
          if (!measuring) continue
          if (exit._tag === "Success") latencies.push(performance.now() - started)
          else failures++
        }
      })
      const fibers = yield* Effect.forEach(Array.from({ length: callers }), () => Effect.forkChild(caller))
      yield* Effect.sleep(`${warm} seconds`)
      const cpu = process.cpuUsage()
      const t0 = performance.now()
      measuring = true
      console.log("START")
      yield* Effect.sleep(`${measured} seconds`)
      measuring = false
      const elapsed = (performance.now() - t0) / 1000
      const used = process.cpuUsage(cpu)
      stop = true
      yield* Effect.forEach(fibers, (f) => Effect.ignore(Effect.timeout(Fiber.await(f), "10 seconds")))
      const sorted = Float64Array.from(latencies).sort()
      console.log(`RESULT ${JSON.stringify({
        calls: latencies.length,
        perSecond: latencies.length / elapsed,
        p50: percentile(sorted, 0.5),
        p99: percentile(sorted, 0.99),
        failures,
        cpuSeconds: (used.user + used.system) / 1e6,
        elapsed
      })}`)
    })
  if (!controlled) return yield* window(warmup, seconds)
  // turns: the orchestrator writes a line to stdin for each window; this process idles in between
  console.log("READY")
  while (true) {
    yield* nextLine
    yield* window(warmup, seconds)
  }
})

NodeRuntime.runMain(
  program.pipe(Effect.provide(handleLayer), Effect.scoped, Effect.provideService(References.MinimumLogLevel, "Error")),
  { teardown: (exit) => process.exit(exit._tag === "Success" ? 0 : 1) }
)
