/**
 * The benchmark driver: runs every (peer, workload) measurement in a fresh
 * child process (bench/worker.ts, on this same Node binary, with tsx and
 * --expose-gc), alternating peers, repeated; then aggregates medians and
 * min-max, computes ratios, checks the targets, and writes
 * bench/results/latest.md, latest.svg and latest.raw.json.
 *
 *   npm run bench                  # full: 3 repetitions, every workload (several minutes)
 *   npm run bench:quick            # under a minute: 1 repetition, fewer workloads, shorter runs
 *   npx tsx bench/run.ts --reps 5 --peers effect-dispatcher,effect-floor --workloads w1-k1,w2
 *   npx tsx bench/run.ts --render bench/results/latest.raw.json   # the report again, from saved figures
 *   npx tsx bench/run.ts --update --peers effect-cluster --workloads w6   # re-measure some, keep the rest
 */
import { execFileSync, spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import { nodeArgs, resultIn } from "./child.js"
import { loadPeer } from "./peers/index.js"
import { type Plan, render, type RunInfo } from "./report.js"
import type { PeerName, Result, WorkloadName } from "./types.js"
import { peerNames, workloadNames } from "./types.js"
import { idleChildren } from "./workloads.js"

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, "..")

const argValue = (name: string): string | undefined => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] : undefined
}

const quick = process.argv.includes("--quick")
const reps = Number(argValue("--reps") ?? (quick ? 1 : 3))
const onlyPeers = argValue("--peers")?.split(",") as Array<PeerName> | undefined
const onlyWorkloads = argValue("--workloads")?.split(",") as Array<WorkloadName> | undefined
const outDir = argValue("--out") ?? join(here, "results")
/** --update: measure the selected (peer, workload) pairs again and merge them into the last run's figures */
const update = process.argv.includes("--update")

/**
 * --quick keeps the suite around a minute on an idle machine: one repetition,
 * shorter runs, no K = 100,000, 10,000 idle children for W4/W5, effect-cluster
 * only at K = 1, W1's `sync` and `async` handlers only at K = 1,000 and for this
 * project, effect-floor and plain, and beyond W1 only the peers a target is
 * measured against (none for the absolute W4-W6).
 */
const quickSkips: Partial<Record<WorkloadName, ReadonlyArray<PeerName>>> = {
  "w1-k100000": peerNames,
  "w1-k1000": ["effect-cluster"],
  "w1-k1-sync": peerNames,
  "w1-k1-async": peerNames,
  "w1-k1000-sync": ["effect-diy", "effect-cluster"],
  "w1-k1000-async": ["effect-diy", "effect-cluster"],
  w2: ["effect-diy", "effect-cluster"],
  w3: ["effect-floor", "plain"],
  w4: ["effect-floor", "plain", "effect-diy", "effect-cluster"],
  w5: ["effect-floor", "plain", "effect-diy", "effect-cluster"],
  w6: ["plain", "effect-diy", "effect-cluster"]
}

/** A worker's time limit: generous, since effect-cluster spawning 100,000 entities takes minutes. */
const timeoutMillis = quick ? 90_000 : 600_000

/** The machine's CPU counters (Linux /proc/stat, all cores): busy and total jiffies. */
const cpuTimes = (): { busy: number; total: number } | undefined => {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!
    const [, user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).map(Number)
    const busy = user! + nice! + system! + irq! + softirq! + steal!
    return { busy, total: busy + idle! + iowait! }
  } catch {
    return undefined
  }
}

const cores = os.cpus().length

/** Cores busy over an interval, from two /proc/stat samples. */
const busyCores = (a: { busy: number; total: number }, b: { busy: number; total: number }): number =>
  b.total > a.total ? ((b.busy - a.busy) / (b.total - a.total)) * cores : 0

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * The machine is shared: before a measurement, wait (up to `patience`) until
 * other processes leave at least one core free. A machine that stays busy
 * wears the patience down (halved per wait in vain, down to 2 s), so a loaded
 * machine slows the suite by little; a wait that succeeds restores it.
 */
const maxWaitMillis = quick ? 0 : 15_000
let patience = maxWaitMillis
const waitForACore = async (): Promise<number> => {
  const start = Date.now()
  for (;;) {
    const a = cpuTimes()
    if (a === undefined) return 0
    await sleep(300)
    const b = cpuTimes()!
    if (busyCores(a, b) <= cores - 1) {
      patience = maxWaitMillis
      return Date.now() - start
    }
    if (Date.now() - start >= patience) {
      patience = Math.min(patience, Math.max(2_000, patience / 2))
      return Date.now() - start
    }
    await sleep(700)
  }
}

interface Outcome {
  readonly result?: Result
  readonly error?: string
  readonly millis: number
}

const runWorker = (peer: PeerName, workload: WorkloadName): Promise<Outcome> =>
  new Promise((resolve) => {
    const start = Date.now()
    const machine = cpuTimes()
    const child = spawn(process.execPath, nodeArgs(join(here, "worker.ts"), [peer, workload], quick), { cwd: root, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk) => (stdout += chunk))
    child.stderr.on("data", (chunk) => (stderr += chunk))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMillis)
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      const millis = Date.now() - start
      const result = resultIn<Result>(stdout)
      if (result !== undefined) {
        const after = cpuTimes()
        if (machine !== undefined && after !== undefined && millis > 0) {
          // everything busy, less the worker itself (its CPU time over its life)
          result.otherCores = Math.max(0, busyCores(machine, after) - result.processCpuMillis / millis)
        }
        return resolve({ result, millis })
      }
      const why = signal === "SIGKILL" ? `timed out after ${timeoutMillis / 1000} s` : `exit ${code}`
      const output = (stderr || stdout).trim().split("\n")
      const first = output.find((l) => /(Error|error)\b/.test(l))?.trim()
      resolve({ error: `${why}: ${first ?? output.slice(-3).join(" | ")}`, millis })
    })
  })

/** A hash of everything in src/. */
const sourceHash = (): string => {
  const hash = createHash("sha256")
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name)
      if (statSync(path).isDirectory()) walk(path)
      else {
        hash.update(relative(root, path))
        hash.update(readFileSync(path))
      }
    }
  }
  walk(join(root, "src"))
  return hash.digest("hex").slice(0, 12)
}

/** What src/ held when the suite ran: another engineer may be changing it. */
const sourceStamp = (): string => {
  let commit = "unknown"
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim()
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src"], { cwd: root, encoding: "utf8" }).trim()
    if (dirty !== "") commit += " + uncommitted changes in src/"
  } catch {
    // not a git checkout
  }
  return `${commit} (src sha256 ${sourceHash()})`
}

/** What each peer cannot do (n/a), what --quick leaves out, and each peer's notes. */
const planFor = async (quick: boolean): Promise<Plan> => {
  const plan: Plan = { notApplicable: {}, skipped: {}, stopKinds: {}, idleChildren: {}, notes: {} }
  for (const name of peerNames) {
    const peer = await loadPeer(name)
    plan.stopKinds[name] = peer.stopKind
    plan.idleChildren[name] = idleChildren(quick, peer)
    for (const workload of workloadNames) {
      const note = peer.notes?.[workload]
      if (note !== undefined) (plan.notes[workload] ??= {})[name] = note
      const why = peer.unsupported?.[workload] ?? (workload === "w3" && peer.makeTree === undefined ? "no tree" : undefined)
      if (why !== undefined) (plan.notApplicable[workload] ??= {})[name] = why
      else if (quick && quickSkips[workload]?.includes(name)) (plan.skipped[workload] ??= {})[name] = "--quick"
    }
  }
  return plan
}

/** `--render <raw.json>`: render latest.md and latest.svg again from saved measurements. */
const rerender = async (file: string) => {
  const raw = JSON.parse(readFileSync(file, "utf8")) as {
    info: RunInfo
    results: Array<Result>
    errors: Array<{ peer: PeerName; workload: WorkloadName; error: string }>
  }
  const plan = await planFor(raw.info.quick)
  writeReport(render(raw.results, raw.errors, plan, raw.info, peerNames, workloadNames))
}

/** latest.md and latest.svg written, the table printed. */
const writeReport = ({ markdown, svg }: { readonly markdown: string; readonly svg: string }): void => {
  mkdirSync(outDir, { recursive: true })
  writeFileSync(join(outDir, "latest.md"), markdown)
  writeFileSync(join(outDir, "latest.svg"), svg)
  process.stdout.write(markdown)
}

const main = async () => {
  const major = Number(process.versions.node.split(".")[0])
  if (major < 22) {
    console.error(`warning: Node ${process.version}; Effect 4 wants Node 22+ (run through npm so node_modules/.bin/node is used)`)
  }
  const peers = peerNames.filter((p) => onlyPeers === undefined || onlyPeers.includes(p))
  const workloads = workloadNames.filter((w) => onlyWorkloads === undefined || onlyWorkloads.includes(w))

  const plan = await planFor(quick)

  const jobs: Array<{ rep: number; workload: WorkloadName; peer: PeerName }> = []
  for (let rep = 0; rep < reps; rep++) {
    workloads.forEach((workload, w) => {
      const runnable = peers.filter((p) => plan.notApplicable[workload]?.[p] === undefined && plan.skipped[workload]?.[p] === undefined)
      // alternate: each repetition and each workload starts with another peer
      const shift = (rep + w) % Math.max(runnable.length, 1)
      for (const peer of [...runnable.slice(shift), ...runnable.slice(0, shift)]) jobs.push({ rep, workload, peer })
    })
  }

  const started = new Date()
  const stamp = sourceStamp()
  console.error(
    `bench: ${jobs.length} measurements (${reps} repetition${reps === 1 ? "" : "s"}${quick ? ", --quick" : ""}) on Node ${process.version} (${process.execPath})`
  )
  console.error(`bench: src at ${stamp}`)
  const results: Array<Result> = []
  const errors: Array<{ peer: PeerName; workload: WorkloadName; error: string }> = []
  for (const [i, job] of jobs.entries()) {
    const waited = await waitForACore()
    const source = sourceHash()
    const outcome = await runWorker(job.peer, job.workload)
    if (outcome.result !== undefined) {
      outcome.result.waitedMillis = waited
      outcome.result.source = source
    }
    const tag = `[${String(i + 1).padStart(3)}/${jobs.length}] rep ${job.rep + 1} ${job.workload.padEnd(14)} ${job.peer.padEnd(17)}`
    if (outcome.result !== undefined) {
      results.push(outcome.result)
      const r = outcome.result
      const wrong = r.wrong > 0 ? `  WRONG ANSWERS: ${r.wrong}` : ""
      const others = r.otherCores === undefined ? "" : `, others busy ${r.otherCores.toFixed(1)} cores`
      const wait = waited >= 1_000 ? `, waited ${(waited / 1000).toFixed(0)} s for a core` : ""
      console.error(
        `${tag} ${format(r.value).padStart(9)} ${r.unit.padEnd(12)} (${(outcome.millis / 1000).toFixed(1)} s${others}${wait})${wrong}`
      )
    } else {
      errors.push({ peer: job.peer, workload: job.workload, error: outcome.error! })
      console.error(`${tag} FAILED ${outcome.error}`)
    }
  }

  const info: RunInfo = {
    quick,
    reps,
    started: started.toISOString(),
    minutes: (Date.now() - started.getTime()) / 60_000,
    node: process.version,
    nodePath: relative(root, process.execPath).startsWith("..") ? process.execPath : relative(root, process.execPath),
    cpu: `${os.cpus()[0]?.model ?? "unknown CPU"} x ${os.cpus().length}`,
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    load: os.loadavg().map((l) => l.toFixed(2)).join(" "),
    otherCores: summary(results.map((r) => r.otherCores).filter((x): x is number => x !== undefined)),
    source: stamp
  }
  let raw = { info, results, errors }
  if (update) {
    // re-measured figures replace their old ones; everything else is kept from the last run
    const previous = JSON.parse(readFileSync(join(outDir, "latest.raw.json"), "utf8")) as typeof raw
    const redone = (r: { peer: PeerName; workload: WorkloadName }) =>
      jobs.some((j) => j.peer === r.peer && j.workload === r.workload)
    const kept = previous.results.filter((r) => !redone(r))
    const pairs = [...new Set(jobs.map((j) => `${j.peer} ${j.workload}`))].join(", ")
    raw = {
      info: {
        ...previous.info,
        source: `${previous.info.source}; then ${pairs} measured again on ${info.started.slice(0, 16)} with src at ${info.source}`
      },
      results: [...kept, ...results],
      errors: [...previous.errors.filter((e) => !redone(e)), ...errors]
    }
  }
  writeReport(
    update
      ? render(raw.results, raw.errors, plan, raw.info, peerNames, workloadNames)
      : render(results, errors, plan, info, peers, workloads)
  )
  writeFileSync(join(outDir, "latest.raw.json"), JSON.stringify(raw, null, 2))
  console.error(`bench: wrote ${relative(root, join(outDir, "latest.md"))}, latest.svg and latest.raw.json`)
}

const summary = (xs: Array<number>): string => {
  if (xs.length === 0) return "unknown"
  const sorted = [...xs].sort((a, b) => a - b)
  const median = sorted[Math.floor(sorted.length / 2)]!
  return `median ${median.toFixed(1)}, max ${sorted[sorted.length - 1]!.toFixed(1)} of ${cores} cores`
}

const format = (n: number): string =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(n >= 100 ? 0 : 1)

const renderFrom = argValue("--render")
;(renderFrom !== undefined ? rerender(renderFrom) : main()).catch((error) => {
  console.error(error)
  process.exit(1)
})
