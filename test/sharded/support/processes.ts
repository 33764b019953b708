/**
 * Runner processes for tests: real OS processes, each running a small entry
 * script with this Node (the project's pinned one under `npm test`) and tsx,
 * killed when the test's Scope closes, pass or fail. Three more guards, so no
 * process outlives its test run:
 * - every child is tracked here and killed when this process exits, or on
 *   SIGINT/SIGTERM;
 * - every child watches its stdin (a pipe from this process) and exits when it
 *   closes: that happens even if this process is killed with SIGKILL.
 */
import { Effect, Scope } from "effect"
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const live = new Set<ChildProcess.ChildProcess>()

const killAll = () => {
  for (const child of live) {
    try {
      child.kill("SIGKILL")
    } catch {
      // already gone
    }
  }
  live.clear()
}

let guarded = false
const guard = () => {
  if (guarded) return
  guarded = true
  process.once("exit", killAll)
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      killAll()
      process.kill(process.pid, signal)
    })
  }
}

/** A running process and what it printed. */
export interface Proc {
  readonly name: string
  readonly pid: number
  /** every line it printed so far, stdout and stderr */
  readonly output: () => string
  /** send a signal (SIGTERM, SIGKILL, SIGSTOP, SIGCONT) */
  readonly signal: (signal: NodeJS.Signals) => void
  /** resolves with the exit code (or the signal's name) */
  readonly exited: Effect.Effect<number | string>
}

const here = Path.dirname(fileURLToPath(import.meta.url))

/** The path of a script under `test/sharded/`. */
export const script = (name: string): string => Path.join(here, "..", name)

/**
 * Start `node --import tsx <script>` with these environment variables, wait
 * until it prints `READY` (or fail with its output if it exits or takes longer
 * than `readyWithin`), and kill it (SIGKILL) when the Scope closes.
 */
export const spawn = (options: {
  readonly name: string
  readonly script: string
  readonly env: Record<string, string>
  readonly readyWithin?: number
}): Effect.Effect<Proc, Error, Scope.Scope> =>
  Effect.gen(function*() {
    guard()
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const child = ChildProcess.spawn(process.execPath, ["--import", "tsx", options.script], {
          env: { ...process.env, ...options.env },
          stdio: ["pipe", "pipe", "pipe"]
        })
        live.add(child)
        return child
      }),
      (child) =>
        Effect.sync(() => {
          live.delete(child)
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
        })
    )
    let output = ""
    const exited = new Promise<number | string>((resolve) =>
      child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"))
    )
    const ready = new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString()
        if (output.includes("READY")) resolve()
      }
      child.stdout!.on("data", onData)
      child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()))
      void exited.then((code) => reject(new Error(`${options.name} exited (${code}) before READY:\n${output}`)))
    })
    yield* Effect.tryPromise({
      try: () => ready,
      catch: (error) => (error instanceof Error ? error : new Error(String(error)))
    }).pipe(
      Effect.timeoutOrElse({
        duration: options.readyWithin ?? 60_000,
        orElse: () => Effect.fail(new Error(`${options.name} not READY in time:\n${output}`))
      })
    )
    return {
      name: options.name,
      pid: child.pid!,
      output: () => output,
      signal: (signal) => void child.kill(signal),
      exited: Effect.promise(() => exited)
    }
  })
