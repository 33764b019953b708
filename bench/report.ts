/**
 * Aggregates the measurements (median and min-max per peer and figure),
 * computes ratios to this project and to effect-floor, checks the targets, and
 * renders the Markdown table and the SVG bar chart (hand-made, no browser).
 */
import type { PeerName, Result, WorkloadName } from "./types.js"

export interface Plan {
  /** workload -> peer -> why the peer cannot do it meaningfully */
  readonly notApplicable: Partial<Record<WorkloadName, Partial<Record<PeerName, string>>>>
  /** workload -> peer -> why it was not run this time (--quick) */
  readonly skipped: Partial<Record<WorkloadName, Partial<Record<PeerName, string>>>>
  readonly stopKinds: Partial<Record<PeerName, string>>
  readonly idleChildren: Partial<Record<PeerName, number>>
  /** workload -> peer -> a footnote */
  readonly notes: Partial<Record<WorkloadName, Partial<Record<PeerName, string>>>>
}

export interface RunInfo {
  readonly quick: boolean
  readonly reps: number
  readonly started: string
  readonly minutes: number
  readonly node: string
  readonly nodePath: string
  readonly cpu: string
  readonly memory: string
  readonly os: string
  readonly load: string
  readonly otherCores: string
  readonly source: string
}

const THIS: PeerName = "effect-dispatcher"
const FLOOR: PeerName = "effect-floor"

/** A row of the table: one figure of one workload. */
interface Figure {
  readonly id: string
  readonly workload: WorkloadName
  readonly label: string
  readonly unit: "rate" | "bytes" | "ms" | "ns" | "x"
  readonly better: "higher" | "lower"
  readonly pick: (r: Result) => number | undefined
}

const figures: ReadonlyArray<Figure> = [
  { id: "w1-k1", workload: "w1-k1", label: "W1 round trip, K = 1 (calls/s)", unit: "rate", better: "higher", pick: (r) => r.value },
  { id: "w1-k1000", workload: "w1-k1000", label: "W1 round trip, K = 1,000 (calls/s)", unit: "rate", better: "higher", pick: (r) => r.value },
  { id: "w1-k100000", workload: "w1-k100000", label: "W1 round trip, K = 100,000 (calls/s)", unit: "rate", better: "higher", pick: (r) => r.value },
  { id: "w1-k1-sync", workload: "w1-k1-sync", label: "W1 with an `Effect.sync` handler, K = 1 (calls/s)", unit: "rate", better: "higher", pick: (r) => r.value },
  { id: "w1-k1000-sync", workload: "w1-k1000-sync", label: "W1 with an `Effect.sync` handler, K = 1,000 (calls/s)", unit: "rate", better: "higher", pick: (r) => r.value },
  { id: "w1-k1-async", workload: "w1-k1-async", label: "W1 with one async hop (`Effect.promise`), K = 1 (calls/s)", unit: "rate", better: "higher", pick: (r) => r.value },
  { id: "w1-k1000-async", workload: "w1-k1000-async", label: "W1 with one async hop (`Effect.promise`), K = 1,000 (calls/s)", unit: "rate", better: "higher", pick: (r) => r.value },
  { id: "w2", workload: "w2", label: "W2 churn, spawn + dispose per call (keys/s)", unit: "rate", better: "higher", pick: (r) => r.value },
  { id: "w3", workload: "w3", label: "W3 hierarchy, 100 groups x 100 topics (calls/s)", unit: "rate", better: "higher", pick: (r) => r.value },
  { id: "w4", workload: "w4", label: "W4 heap per idle child (bytes)", unit: "bytes", better: "lower", pick: (r) => r.value },
  { id: "w4-rss", workload: "w4", label: "W4 RSS per idle child (bytes)", unit: "bytes", better: "lower", pick: (r) => r.extra["rssPerChild"] },
  { id: "w5", workload: "w5", label: "W5 stop with idle children (ms)", unit: "ms", better: "lower", pick: (r) => r.value },
  { id: "w6", workload: "w6", label: "W6 overload: accepted/s", unit: "rate", better: "higher", pick: (r) => r.value },
  { id: "w6-rejected", workload: "w6", label: "W6 overload: rejected/s", unit: "rate", better: "higher", pick: (r) => r.extra["rejectedPerSec"] },
  { id: "w6-reject", workload: "w6", label: "W6 cost of a rejection (ns)", unit: "ns", better: "lower", pick: (r) => r.extra["rejectNs"] },
  { id: "w6-accept", workload: "w6", label: "W6 cost of an accepted round trip (ns)", unit: "ns", better: "lower", pick: (r) => r.extra["acceptNs"] },
  { id: "w6-ratio", workload: "w6", label: "W6 rejection ÷ accepted round trip", unit: "x", better: "lower", pick: (r) => r.extra["rejectOverAccept"] }
]

/** The same throughputs per CPU-second of the worker (all its threads): less sensitive to other load on the machine. */
const cpuFigures: ReadonlyArray<Figure> = [
  ...figures.filter((f) => f.unit === "rate" && !f.id.startsWith("w6")).map((f): Figure => ({
    ...f,
    id: `${f.id}-cpu`,
    label: f.label.replace("(calls/s)", "(calls per CPU-s)").replace("(keys/s)", "(keys per CPU-s)"),
    pick: (r) => r.extra["perCpuSecond"]
  })),
  { id: "w5-cpu", workload: "w5", label: "W5 stop: CPU time (ms)", unit: "ms", better: "lower", pick: (r) => r.extra["cpuMillis"] },
  { id: "w6-reject-cpu", workload: "w6", label: "W6 cost of a rejection (CPU ns)", unit: "ns", better: "lower", pick: (r) => r.extra["rejectCpuNs"] },
  { id: "w6-accept-cpu", workload: "w6", label: "W6 cost of an accepted round trip (CPU ns)", unit: "ns", better: "lower", pick: (r) => r.extra["acceptCpuNs"] },
  { id: "w6-ratio-cpu", workload: "w6", label: "W6 rejection ÷ accepted round trip (CPU)", unit: "x", better: "lower", pick: (r) => r.extra["rejectOverAcceptCpu"] }
]

const allFigures = [...figures, ...cpuFigures]

export interface Stat {
  readonly median: number
  readonly min: number
  readonly max: number
  readonly n: number
}

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

const stat = (xs: ReadonlyArray<number>): Stat | undefined =>
  xs.length === 0 ? undefined : { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length }

// -----------------------------------------------------------------------------
// Formatting
// -----------------------------------------------------------------------------

const num = (n: number, unit: Figure["unit"]): string => {
  switch (unit) {
    case "rate":
      return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(n >= 1e5 ? 0 : 1)}k` : n.toFixed(0)
    case "bytes":
      return Math.round(n).toLocaleString("en-US")
    case "ms":
      return n >= 100 ? n.toFixed(0) : n.toFixed(1)
    case "ns":
      return n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0)
    case "x":
      return n.toFixed(2)
  }
}

const times = (r: number): string =>
  r >= 100 ? `${r.toFixed(0)}×` : r >= 10 ? `${r.toFixed(1)}×` : r >= 0.01 ? `${r.toFixed(2)}×` : `${r.toPrecision(2)}×`

const cell = (s: Stat | undefined, unit: Figure["unit"]): string =>
  s === undefined ? "" : s.n === 1 ? num(s.median, unit) : `${num(s.median, unit)} (${num(s.min, unit)}–${num(s.max, unit)})`

// -----------------------------------------------------------------------------
// Targets
// -----------------------------------------------------------------------------

interface Check {
  /** the figure of the table it is about */
  readonly id: string
  readonly figure: string
  readonly target: string
  readonly measured: string
  readonly pass: boolean | undefined
  /** the same ratio per CPU-second, where it applies */
  readonly cpu?: string
}

const checks = (get: (peer: PeerName, figure: string) => Stat | undefined, info: RunInfo): Array<Check> => {
  const out: Array<Check> = []
  const ratio = (a: Stat | undefined, b: Stat | undefined) => (a && b ? a.median / b.median : undefined)
  /** this project's `mine` ÷ `peer`'s `theirs`, by wall clock and per CPU-second */
  const atLeast = (figure: string, target: string, mine: string, peer: PeerName, theirs: string, bound: number) => {
    const r = ratio(get(THIS, mine), get(peer, theirs))
    const c = ratio(get(THIS, `${mine}-cpu`), get(peer, `${theirs}-cpu`))
    out.push({
      id: mine,
      figure,
      target,
      measured: r === undefined ? "n/a" : times(r),
      pass: r === undefined ? undefined : r >= bound,
      cpu: c === undefined ? "" : `${times(c)} ${c >= bound ? "(would pass)" : "(would fail)"}`
    })
  }
  const w1 = [["w1-k1", "W1 K=1", 1.5], ["w1-k1000", "W1 K=1,000", 1.0], ["w1-k100000", "W1 K=100,000", 1.0]] as const
  for (const [id, name, bound] of w1) atLeast(name, `>= ${bound.toFixed(1)}x effect-floor`, id, FLOOR, id, bound)
  atLeast("W2 churn", ">= 1.0x effect-floor", "w2", FLOOR, "w2", 1)
  atLeast("W3 hierarchy", ">= 0.5x this project's W1 K=1,000", "w3", THIS, "w1-k1000", 0.5)
  atLeast("W3 hierarchy", ">= 2x effect-diy", "w3", "effect-diy", "w3", 2)
  for (const [id, name] of w1) atLeast(name, ">= 20x effect-cluster", id, "effect-cluster", id, 20)
  const w4 = get(THIS, "w4")
  out.push({
    id: "w4",
    figure: "W4 heap per idle child",
    target: "<= 3,072 bytes",
    measured: w4 === undefined ? "n/a" : `${num(w4.median, "bytes")} bytes`,
    pass: w4 === undefined ? undefined : w4.median <= 3072
  })
  const w5 = get(THIS, "w5")
  out.push({
    id: "w5",
    figure: "W5 graceful stop",
    target: `<= 750 ms for 100,000 idle children${info.quick ? " (--quick: 10,000)" : ""}`,
    measured: w5 === undefined ? "n/a" : `${num(w5.median, "ms")} ms`,
    pass: w5 === undefined ? undefined : w5.median <= 750
  })
  const w6 = get(THIS, "w6-ratio")
  const w6cpu = get(THIS, "w6-ratio-cpu")
  out.push({
    id: "w6-ratio",
    figure: "W6 rejection cost",
    target: "< 0.25x an accepted round trip",
    measured: w6 === undefined ? "n/a" : times(w6.median),
    pass: w6 === undefined ? undefined : w6.median < 0.25,
    cpu: w6cpu === undefined ? "" : `${times(w6cpu.median)} ${w6cpu.median < 0.25 ? "(would pass)" : "(would fail)"}`
  })
  return out
}

const verdict = (pass: boolean | undefined) => (pass === undefined ? "n/a" : pass ? "PASS" : "FAIL")

// -----------------------------------------------------------------------------
// Markdown
// -----------------------------------------------------------------------------

export const render = (
  results: ReadonlyArray<Result>,
  errors: ReadonlyArray<{ peer: PeerName; workload: WorkloadName; error: string }>,
  plan: Plan,
  info: RunInfo,
  peers: ReadonlyArray<PeerName>,
  workloads: ReadonlyArray<WorkloadName>
): { markdown: string; svg: string } => {
  const stats = new Map<string, Stat>()
  for (const figure of allFigures) {
    for (const peer of peers) {
      const xs = results
        .filter((r) => r.peer === peer && r.workload === figure.workload)
        .map(figure.pick)
        .filter((x): x is number => x !== undefined && Number.isFinite(x))
      const s = stat(xs)
      if (s !== undefined) stats.set(`${peer}|${figure.id}`, s)
    }
  }
  const get = (peer: PeerName, figure: string) => stats.get(`${peer}|${figure}`)
  const targetChecks = checks(get, info)

  const notes: Array<string> = []
  const noteFor = (text: string): string => {
    let i = notes.indexOf(text)
    if (i < 0) i = notes.push(text) - 1
    return `[${i + 1}]`
  }

  const table = (rows: ReadonlyArray<Figure>, withTargets: boolean): Array<string> => {
    const lines: Array<string> = []
    const shown = rows.filter((f) => workloads.includes(f.workload))
    const header = ["figure", ...peers.map((p) => (p === THIS ? `**${p}** (this project)` : p)), "this ÷ floor"]
    if (withTargets) header.push("targets")
    lines.push(`| ${header.join(" | ")} |`)
    lines.push(`|${header.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`)
    for (const figure of shown) {
      const mine = get(THIS, figure.id)
      const row = [figure.label]
      for (const peer of peers) {
        const s = get(peer, figure.id)
        const na = plan.notApplicable[figure.workload]?.[peer]
        const skipped = plan.skipped[figure.workload]?.[peer]
        const failed = errors.find((e) => e.peer === peer && e.workload === figure.workload)
        let text: string
        if (s !== undefined) {
          text = cell(s, figure.unit)
          if (peer !== THIS && mine !== undefined && mine.median > 0 && figure.unit !== "x") {
            text += ` · ${times(s.median / mine.median)}`
          }
          if (peer === THIS) text = `**${text}**`
          if (s.n < info.reps) {
            const failed = errors.filter((e) => e.peer === peer && e.workload === figure.workload)
            text += ` ${noteFor(`${peer} ${figure.workload}: ${s.n} of ${info.reps} repetitions${failed.length > 0 ? `; the others failed: ${failed.map((e) => e.error).join("; ")}` : ""}.`)}`
          }
          if ((figure.workload === "w4" || figure.workload === "w5") && plan.idleChildren[peer] !== plan.idleChildren[THIS]) {
            text += ` ${noteFor(`${peer}: W4/W5 with ${plan.idleChildren[peer]?.toLocaleString("en-US")} idle children (${plan.idleChildren[THIS]?.toLocaleString("en-US")} for the others): spawning each entity costs it about as much as a W2 call, so 100,000 take minutes per repetition.`)}`
          }
          if (figure.workload === "w5") text += ` ${noteFor(`How ${peer} stops: ${plan.stopKinds[peer]}.`)}`
          if (figure.id === "w6-rejected" && s.max === 0) {
            text += ` ${noteFor(`${peer} shed nothing in W6's overload: its mailbox never held 64 requests, since it wakes an idle child inside the sender's call and an instant handler answers before the next caller runs. Its rejection cost is timed on a child that never answers, like every peer's.`)}`
          }
          const note = plan.notes[figure.workload]?.[peer]
          if (note !== undefined) text += ` ${noteFor(`${peer}: ${note}.`)}`
        } else if (na !== undefined) {
          text = `n/a ${noteFor(`${peer}: ${na}.`)}`
        } else if (skipped !== undefined) {
          text = `– ${noteFor("not run with --quick (run `npm run bench` for every figure).")}`
        } else if (failed !== undefined) {
          text = `error ${noteFor(`${peer} ${figure.workload}: ${failed.error}`)}`
        } else {
          text = ""
        }
        row.push(text)
      }
      const floor = get(FLOOR, figure.id)
      row.push(mine && floor && floor.median > 0 && figure.unit !== "x" ? times(mine.median / floor.median) : "")
      if (withTargets) {
        const relevant = targetChecks.filter((c) => c.id === figure.id)
        row.push(relevant.map((c) => `${verdict(c.pass)} ${c.target.replace(/ for 100,000.*$/, "")}`).join("; "))
      }
      lines.push(`| ${row.join(" | ")} |`)
    }
    return lines
  }

  const out: Array<string> = []
  out.push(`# effect-dispatcher benchmark${info.quick ? " (--quick)" : ""}`)
  out.push("")
  if (info.quick) {
    out.push(
      "**A smoke run.** With 0.4 s warm-ups and 0.3 s timings, the figures are rough, W3 and W6 (the paths warmed least) most of all: " +
        "use `npm run bench` for figures to compare with the targets."
    )
    out.push("")
  }
  out.push(
    `Node ${info.node} (\`${info.nodePath}\`) on ${info.cpu}, ${info.memory}, ${info.os}; ` +
      `${info.reps} repetition${info.reps === 1 ? "" : "s"} per figure, each in a fresh process, peers alternating; ` +
      `started ${info.started}, took ${info.minutes.toFixed(1)} min. ` +
      `The machine is shared: other processes kept ${info.otherCores} busy during the measurements (load average at the end ${info.load}). ` +
      `src/ measured: ${info.source}.` +
      sourcesNote(results)
  )
  out.push("")
  out.push(
    "Each cell: median (min–max) over the repetitions, then `· N×` = that peer ÷ this project " +
      "(for rates above 1× means faster than this project; for bytes, ms and ns above 1× means more). " +
      "\"this ÷ floor\" = this project ÷ effect-floor."
  )
  out.push("")
  out.push(...table(figures, true))
  out.push("")
  out.push("### The same per CPU-second")
  out.push("")
  out.push(
    "Throughput per second of CPU time used by the worker process (all threads, user + system) during the timed phase: " +
      "the machine is shared, and CPU time is far less sensitive than wall time to other processes taking the cores. " +
      "The targets are checked on the wall-clock figures above."
  )
  out.push("")
  out.push(...table(cpuFigures, false))
  out.push("")
  out.push("## Targets")
  out.push("")
  out.push("| figure | target | measured (medians, wall clock) | | per CPU-second |")
  out.push("|---|---|---:|---|---:|")
  for (const c of targetChecks) {
    out.push(`| ${c.figure} | ${c.target} | ${c.measured} | **${verdict(c.pass)}** | ${c.cpu ?? ""} |`)
  }
  out.push("")
  out.push("![W1–W3 throughput relative to this project](latest.svg)")
  out.push("")
  if (notes.length > 0) {
    out.push("## Notes")
    out.push("")
    notes.forEach((n, i) => out.push(`${i + 1}. ${n}`))
    out.push("")
  }
  out.push("## How it was measured")
  out.push("")
  out.push(...method(info))
  out.push("")
  const wrong = results.filter((r) => r.wrong > 0)
  if (wrong.length > 0) {
    out.push(`**Wrong answers:** ${wrong.map((r) => `${r.peer} ${r.workload}: ${r.wrong}`).join(", ")}`)
    out.push("")
  } else {
    out.push(`Every answer was checked: 0 wrong answers in ${results.reduce((n, r) => n + r.timedCalls + r.warmupCalls, 0).toLocaleString("en-US")} calls.`)
    out.push("")
  }
  return { markdown: out.join("\n"), svg: chart(get, peers, workloads, info) }
}

/** src/ may change while the suite runs (another engineer is optimising it): say so, with how many measurements saw each state. */
const sourcesNote = (results: ReadonlyArray<Result>): string => {
  const counts = new Map<string, number>()
  for (const r of results) if (r.source !== undefined) counts.set(r.source, (counts.get(r.source) ?? 0) + 1)
  if (counts.size <= 1) return ""
  const [hash, n] = [...counts].sort((a, b) => b[1] - a[1])[0]!
  return ` **src/ changed while the suite ran**: the ${results.length} measurements saw ${counts.size} states of it ` +
    `(the most common, sha256 ${hash}, in ${n}); each measurement's state is in latest.raw.json.`
}

const method = (info: RunInfo): Array<string> => [
  "- Every measurement runs in a fresh `node --expose-gc --import tsx bench/worker.ts <peer> <workload>` process on the same Node binary as the driver. " +
  `It warms up on a separate instance (${info.quick ? "about 0.4 s or 100,000 calls" : "about 2 s or 300,000 calls"}), ` +
  `then times a fresh one for about ${info.quick ? "0.3 s" : "2 s"} (rounds sized from the warm-up's rate). A full GC runs before the clock starts.`,
  "- Effect peers run their callers as fibers of one Effect program; plain JS runs them as async functions; the two drivers are the same loop. " +
  "Each call sends a distinct `n` and the answer must be `n`.",
  "- W1: 1,024 callers, call i goes to key i mod K, capacity 2,048 (nothing is rejected); a fresh instance has its K children spawned before the clock starts, so W1 is the round trip with K live children. " +
  "The three W1 rows answer with `Effect.succeed(n)`, the fast path (nothing to run); the `Effect.sync` rows run the handler `Effect.sync(() => n)`, " +
  "the async rows `Effect.promise(() => Promise.resolve(n))`, one microtask hop per request (plain JS: a function call, and `await Promise.resolve(n)`, one request at a time as `serve` does; " +
  "effect-floor and effect-diy run the handler's Effect in the child before answering). " +
  "W2: 256 callers, every call to a fresh key whose child answers it and ends. " +
  "W3: 1,024 callers over 100 groups x 100 topics, root by group, a dispatcher per group by topic, leaves answer; the 10,000 leaves are spawned before the clock starts.",
  `- W4: ${info.quick ? "10,000" : "100,000"} children made idle (one call each, answered) on mailboxes of capacity 64; ` +
  "heap used (after full GCs) before and after, divided by the children; RSS likewise. W5: the time to stop that many idle children (the stop of each peer is said in a note).",
  "- W6: 4,096 callers on one key with capacity 64, each retrying at once when shed (an Effect caller yields once after a rejection, as `await` does in plain JS; " +
  "without the yield, 4,096 fibers spinning on a synchronous failure starve the child). " +
  "The rejection cost is timed on a child that never answers (a full mailbox, every call rejected, no yield); " +
  "the accepted round trip with the same 4,096 callers and the same `tryCall` (the adapter's `Effect.catchCause` that turns a full mailbox into a sentinel is on both sides; not `Effect.catchTag`, whose data-last form costs Effect 4.1 a few hundred ns per call) on a mailbox big enough for all.",
  "- effect-dispatcher runs with its defaults (no tracer installed, default name, metrics and log level) except `mailboxCapacity`. " +
  "effect/cluster runs in-process as `TestRunner.layer` assembles it, with `simulateRemoteSerialization: false` and no cap on resident entities."
]

// -----------------------------------------------------------------------------
// SVG: W1–W3 throughput relative to this project, on a log scale
// -----------------------------------------------------------------------------

const colors: Record<PeerName, string> = {
  "effect-dispatcher": "#2f6fdf",
  "effect-floor": "#7a7a7a",
  plain: "#2e9e5b",
  "effect-diy": "#d98c1f",
  "effect-cluster": "#b8455b"
}

const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

const chart = (
  get: (peer: PeerName, figure: string) => Stat | undefined,
  peers: ReadonlyArray<PeerName>,
  workloads: ReadonlyArray<WorkloadName>,
  info: RunInfo
): string => {
  const groups = figures.filter((f) => ["w1-k1", "w1-k1000", "w1-k100000", "w2", "w3"].includes(f.id) && workloads.includes(f.workload))
  const ratios: Array<number> = []
  for (const g of groups) {
    const mine = get(THIS, g.id)
    for (const p of peers) {
      const s = get(p, g.id)
      if (mine && s) ratios.push(s.median / mine.median)
    }
  }
  const lo = Math.min(0.01, ...ratios.map((r) => 10 ** Math.floor(Math.log10(r))))
  const hi = Math.max(100, ...ratios.map((r) => 10 ** Math.ceil(Math.log10(r))))
  const width = 960
  const left = 300
  const right = 60
  const plotW = width - left - right
  const bar = 16
  const gap = 4
  const groupGap = 22
  const top = 70
  const x = (r: number) => left + ((Math.log10(r) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotW
  const one = x(1)
  const parts: Array<string> = []
  let y = top
  for (const g of groups) {
    const mine = get(THIS, g.id)
    parts.push(`<text x="12" y="${y + 12}" font-weight="bold">${escape(g.label.replace(/ \(.*\)$/, ""))}</text>`)
    y += 20
    for (const p of peers) {
      const s = get(p, g.id)
      const name = p === THIS ? `${p} (this project)` : p
      parts.push(`<text x="${left - 8}" y="${y + bar - 4}" text-anchor="end">${escape(name)}</text>`)
      if (mine === undefined || s === undefined) {
        parts.push(`<text x="${one + 6}" y="${y + bar - 4}" fill="#888">n/a</text>`)
      } else {
        const r = s.median / mine.median
        const end = x(r)
        const x0 = Math.min(one, end)
        const w = Math.max(Math.abs(end - one), 2)
        parts.push(`<rect x="${x0.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${bar}" fill="${colors[p]}"/>`)
        const label = `${times(r)}  (${num(s.median, "rate")}/s)`
        // labels to the right of the bar or of the 1× line, never over the names
        const lx = Math.max(end, one + 2) + 6
        parts.push(`<text x="${lx.toFixed(1)}" y="${y + bar - 4}" fill="#222">${escape(label)}</text>`)
      }
      y += bar + gap
    }
    y += groupGap
  }
  const height = y + 30
  const grid: Array<string> = []
  for (let e = Math.log10(lo); e <= Math.log10(hi) + 1e-9; e++) {
    const r = 10 ** e
    const gx = x(r)
    grid.push(`<line x1="${gx.toFixed(1)}" y1="${top - 8}" x2="${gx.toFixed(1)}" y2="${y - groupGap + 4}" stroke="${r === 1 ? "#333" : "#ddd"}" stroke-width="${r === 1 ? 1.5 : 1}"/>`)
    grid.push(`<text x="${gx.toFixed(1)}" y="${y - groupGap + 20}" text-anchor="middle" fill="#555">${r}×</text>`)
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="12" y="24" font-size="16" font-weight="bold">Throughput relative to effect-dispatcher (medians, log scale; right of 1× is faster)</text>`,
    `<text x="12" y="44" fill="#555">${escape(`Node ${info.node}, ${info.cpu}; ${info.reps} repetition${info.reps === 1 ? "" : "s"}${info.quick ? ", --quick" : ""}; ${info.started.slice(0, 10)}`)}</text>`,
    ...grid,
    ...parts,
    `</svg>`,
    ""
  ].join("\n")
}
