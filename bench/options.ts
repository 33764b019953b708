/**
 * What each option costs: this project's W1 (K = 1,000 round trips) and W4
 * (heap per idle child) with one option on at a time, then all of them,
 * against the defaults, in one run. Options are set so that they never fire
 * (a deadline of a minute, a cap no run reaches): what is measured is the
 * price of having them on. The inspector (`effect-dispatcher/Inspector`) is
 * measured the same way: off (the defaults), mounted with no client, and
 * mounted with a page open (a client following its events at 1 Hz); then the
 * time one refresh takes on 100,000 live keys in a three-level tree, and the
 * process's CPU per second with no client and with a page open. Each
 * measurement runs in a fresh process, variants alternating, 3 repetitions;
 * the tables go to stdout and bench/results/options.md.
 *
 * A second table: 100,000 distinct keys (10,000 with --quick), each called once
 * by 1,024 concurrent callers, uncapped and under `maxChildren` a tenth of that (so 90% of them make
 * room by passivating the least recently used child): the price of making
 * room, which must be O(1) amortised (target: the capped run within 3x of the
 * uncapped one).
 *
 *   npm run bench:options [-- --quick] [-- --inspector-only]
 */
import { spawnSync } from "node:child_process"
import { writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import type { Dispatcher } from "effect-dispatcher"
import { exitWhenDone, nodeArgs, printResult, resultIn } from "./child.js"
import { attachInspector, type InspectorMode, refreshFigures } from "./inspector.js"
import { peerWith } from "./peers/effect-dispatcher.js"
import type { EffectPeer, Measured } from "./types.js"
import { paramsFor, runEffect } from "./workloads.js"

interface Variant {
  readonly options?: Omit<Dispatcher.Options, "mailboxCapacity">
  readonly serve?: Dispatcher.ServeOptions
  readonly inspector?: InspectorMode
}

const variants: Record<string, Variant> = {
  "defaults": {},
  "requestTimeout: 1 minute": { options: { requestTimeout: "1 minute" } },
  "idleTimeToLive: 1 minute": { serve: { idleTimeToLive: "1 minute" } },
  "maxChildren: 1,000,000": { options: { maxChildren: 1_000_000 } },
  "overflow: { wait: 1 second }": { options: { overflow: { wait: "1 second" } } },
  "all of the above": {
    options: { requestTimeout: "1 minute", maxChildren: 1_000_000, overflow: { wait: "1 second" } },
    serve: { idleTimeToLive: "1 minute" }
  },
  "inspector mounted, no client": { inspector: "mounted" },
  "inspector mounted, a page open at 1 Hz": { inspector: "page" }
}
const inspectorOnly = process.argv.includes("--inspector-only")
const inspectorVariants = ["defaults", "inspector mounted, no client", "inspector mounted, a page open at 1 Hz"]
const workloads = ["w1-k1000", "w4"] as const
const REPETITIONS = 3

const here = dirname(fileURLToPath(import.meta.url))
const quick = process.argv.includes("--quick")

const measureHere = async (name: string, workload: (typeof workloads)[number]) => {
  const variant = variants[name]
  if (variant === undefined) throw new Error(`no variant ${name}`)
  const peer: EffectPeer = {
    kind: "effect",
    stopKind: "graceful",
    make: peerWith(variant.options, variant.serve, variant.inspector === undefined ? undefined : attachInspector(variant.inspector))
  }
  const measured = await Effect.runPromise(runEffect(peer, workload, paramsFor(quick, peer)) as Effect.Effect<Measured>)
  printResult(measured)
}

/** 100,000 distinct keys, each called once by 1,024 concurrent callers: keys/s. */
const DISTINCT_KEYS = 100_000
const DISTINCT_CALLERS = 1_024
const distinctKeys = quick ? DISTINCT_KEYS / 10 : DISTINCT_KEYS
/** a tenth of the keys: 90% of them make room */
const distinctCap = distinctKeys / 10
const distinctVariants: Record<string, Omit<Dispatcher.Options, "mailboxCapacity">> = {
  "uncapped": {},
  [`maxChildren: ${distinctCap.toLocaleString("en-US")}`]: { maxChildren: distinctCap }
}

const measureDistinctHere = async (name: string) => {
  const options = distinctVariants[name]
  if (options === undefined) throw new Error(`no variant ${name}`)
  const keys = distinctKeys
  const measured = await Effect.runPromise(
    Effect.scoped(Effect.gen(function*() {
      const service = yield* peerWith(options)({ capacity: 64, child: "echo" })
      let next = 0
      let wrong = 0
      const caller = Effect.gen(function*() {
        for (let n = next++; n < keys; n = next++) {
          if ((yield* service.call(`d${n}`, n)) !== n) wrong++
        }
      })
      const started = performance.now()
      yield* Effect.all(Array.from({ length: DISTINCT_CALLERS }, () => caller), { concurrency: "unbounded", discard: true })
      const seconds = (performance.now() - started) / 1000
      return { value: keys / seconds, unit: "keys/s", extra: {}, timedCalls: keys, warmupCalls: 0, warmupMillis: 0, wrong }
    }))
  )
  printResult(measured)
}

const measureInChild = (name: string, workload: string): Measured => {
  const out = spawnSync(process.execPath, nodeArgs(fileURLToPath(import.meta.url), ["--child", name, workload], quick), {
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024
  })
  const measured = resultIn<Measured>(out.stdout)
  if (out.status !== 0 || measured === undefined) throw new Error(`${name} ${workload} failed:\n${out.stderr}`)
  return measured
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const fmt = (x: number, unit: string) =>
  unit === "calls/s"
    ? x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : `${(x / 1e3).toFixed(0)}k`
    : Math.round(x).toLocaleString("en-US")

const main = () => {
  const runs = new Map<string, Array<Measured>>()
  const names = inspectorOnly ? inspectorVariants : Object.keys(variants)
  const repetitions = quick ? 1 : REPETITIONS
  let done = 0
  const total = repetitions * workloads.length * names.length
  for (let rep = 0; rep < repetitions; rep++) {
    for (const workload of workloads) {
      for (const name of rep % 2 === 0 ? names : [...names].reverse()) {
        const measured = measureInChild(name, workload)
        if (measured.wrong !== 0) throw new Error(`${name} ${workload}: ${measured.wrong} wrong answers`)
        const key = `${name}|${workload}`
        runs.set(key, [...(runs.get(key) ?? []), measured])
        console.error(`[${++done}/${total}] ${workload} ${name}: ${fmt(measured.value, measured.unit)} ${measured.unit}`)
      }
    }
  }
  const cell = (name: string, workload: string) => {
    const measured = runs.get(`${name}|${workload}`)!
    const unit = measured[0]!.unit
    const values = measured.map((m) => m.value)
    const base = median(runs.get(`defaults|${workload}`)!.map((m) => m.value))
    const m = median(values)
    const range = `${fmt(Math.min(...values), unit)}–${fmt(Math.max(...values), unit)}`
    return `${fmt(m, unit)} (${range}) · ${(m / base).toFixed(2)}×`
  }
  // making room: 100k distinct keys, uncapped and capped
  const distinct = new Map<string, Array<number>>()
  // (--inspector-only: not this table)
  const distinctNames = inspectorOnly ? [] : Object.keys(distinctVariants)
  for (let rep = 0; rep < repetitions; rep++) {
    for (const name of rep % 2 === 0 ? distinctNames : [...distinctNames].reverse()) {
      const measured = measureInChild(name, "distinct")
      if (measured.wrong !== 0) throw new Error(`${name} distinct: ${measured.wrong} wrong answers`)
      distinct.set(name, [...(distinct.get(name) ?? []), measured.value])
      console.error(`[distinct ${rep + 1}/${repetitions}] ${name}: ${fmt(measured.value, "calls/s")} keys/s`)
    }
  }
  const distinctBase = inspectorOnly ? 1 : median(distinct.get("uncapped")!)
  const distinctCell = (name: string) => {
    const values = distinct.get(name)!
    const m = median(values)
    const range = `${fmt(Math.min(...values), "calls/s")}–${fmt(Math.max(...values), "calls/s")}`
    return `${fmt(m, "calls/s")} (${range}) · ${(m / distinctBase).toFixed(2)}×`
  }
  const capped = inspectorOnly ? 1 : median(distinct.get(distinctNames[1]!)!) / distinctBase
  const lines = [
    "# What each option costs",
    "",
    `Node ${process.version}; ${repetitions} repetition(s) per figure, each in a fresh process, variants alternating; ` +
    `${new Date().toISOString()}. \`· N×\` is that variant ÷ the defaults. Each option is set so it never fires: ` +
    "the price of having it on. W1 K=1,000: 1,024 callers, calls/s (higher is better). W4: heap bytes per idle child " +
    `(${paramsFor(quick, {}).children.toLocaleString("en-US")} idle children; lower is better). The inspector: ` +
    "mounted on an in-memory router (no server), with no client, or with one client following its events at 1 Hz " +
    "(a page open, less the socket writes); off is the defaults row.",
    "",
    "| options | W1 K=1,000 (calls/s) | W4 heap per idle child (bytes) |",
    "|---|---:|---:|",
    ...names.map((name) => `| ${name} | ${cell(name, "w1-k1000")} | ${cell(name, "w4")} |`),
    "",
    ...(inspectorOnly ? [] : [
      `Making room: ${distinctKeys.toLocaleString("en-US")} distinct keys, each called once ` +
      `by ${DISTINCT_CALLERS.toLocaleString("en-US")} concurrent callers (keys/s, higher is better). Under the cap, every ` +
      `key past the ${distinctCap.toLocaleString("en-US")}th passivates the least recently used child and its own child ` +
      "starts once that one has ended.",
      "",
      `| ${distinctKeys.toLocaleString("en-US")} distinct keys | keys/s |`,
      "|---|---:|",
      ...distinctNames.map((name) => `| ${name} | ${distinctCell(name)} |`),
      "",
      `Target: the capped run within 3x of the uncapped one (>= 0.33×): ${capped >= 1 / 3 ? "PASS" : "FAIL"} (${capped.toFixed(2)}×).`,
      ""
    ])
  ]
  // the inspector's refresh on 100,000 live keys, in a fresh process, once per repetition
  const refreshes: Array<RefreshFigures> = []
  for (let rep = 0; rep < repetitions; rep++) {
    const figures = refreshInChild()
    refreshes.push(figures)
    console.error(`[refresh ${rep + 1}/${repetitions}] ${figures.refreshMedianMillis.toFixed(1)} ms (max ${figures.refreshMaxMillis.toFixed(1)})`)
  }
  const mid = (pick: (f: RefreshFigures) => number) => median(refreshes.map(pick))
  const span = (pick: (f: RefreshFigures) => number) =>
    `${Math.min(...refreshes.map(pick)).toFixed(1)}–${Math.max(...refreshes.map(pick)).toFixed(1)}`
  lines.push(
    "The inspector's refresh: one look at a tree of three levels (10 groups x 100 topics x 100 partitions: " +
      `${refreshes[0]!.keys.toLocaleString("en-US")} live keys, 100,000 of them idle leaves), made into the JSON that ` +
      "`/state` answers and each event carries; and this process's CPU per second with no inspector, with the " +
      `inspector mounted and no client, and with a page open at 1 Hz (${refreshes.length} fresh process(es), median of ` +
      `${REFRESHES} refreshes each).`,
    "",
    "| figure | measured | target |",
    "|---|---:|---:|",
    `| one refresh, ${refreshes[0]!.keys.toLocaleString("en-US")} live keys (ms) | ${mid((f) => f.refreshMedianMillis).toFixed(1)} (${span((f) => f.refreshMedianMillis)}); slowest ${mid((f) => f.refreshMaxMillis).toFixed(1)} | < 20 ms |`,
    `| its JSON (bytes) | ${Math.round(mid((f) => f.stateBytes)).toLocaleString("en-US")} | bounded |`,
    `| CPU, no inspector (ms per s) | ${mid((f) => f.cpuPerSecondUnmounted).toFixed(1)} (${span((f) => f.cpuPerSecondUnmounted)}) | |`,
    `| CPU, mounted, no client (ms per s) | ${mid((f) => f.cpuPerSecondNoClient).toFixed(1)} (${span((f) => f.cpuPerSecondNoClient)}) | the same: nothing runs |`,
    `| CPU, a page open at 1 Hz (ms per s) | ${mid((f) => f.cpuPerSecondPage).toFixed(1)} (${span((f) => f.cpuPerSecondPage)}) | one refresh a second |`,
    ""
  )
  const text = lines.join("\n")
  console.log(text)
  writeFileSync(join(here, "results", "options.md"), text)
  console.log("bench: wrote bench/results/options.md")
}

interface RefreshFigures {
  readonly keys: number
  readonly refreshMedianMillis: number
  readonly refreshMaxMillis: number
  readonly stateBytes: number
  readonly cpuPerSecondUnmounted: number
  readonly cpuPerSecondNoClient: number
  readonly cpuPerSecondPage: number
}

const REFRESHES = 20

const refreshInChild = (): RefreshFigures => {
  const out = spawnSync(process.execPath, nodeArgs(fileURLToPath(import.meta.url), ["--refresh"], quick), {
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024
  })
  const figures = resultIn<RefreshFigures>(out.stdout)
  if (out.status !== 0 || figures === undefined) throw new Error(`the refresh measurement failed:\n${out.stderr}`)
  return figures
}

if (process.argv[2] === "--child" && process.argv[4] === "distinct") {
  exitWhenDone(measureDistinctHere(process.argv[3]!))
} else if (process.argv[2] === "--child") {
  exitWhenDone(measureHere(process.argv[3]!, process.argv[4] as (typeof workloads)[number]))
} else if (process.argv[2] === "--refresh") {
  exitWhenDone(
    Effect.runPromise(
      refreshFigures({ refreshes: quick ? 5 : REFRESHES, idleSeconds: quick ? 2 : 5 }).pipe(Effect.scoped)
    ).then(printResult)
  )
} else {
  main()
}
