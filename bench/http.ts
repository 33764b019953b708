/**
 * Load on the pixy proxy over HTTP: start `examples/pixy/main.ts` as a child
 * process (on this Node, with tsx, on a free port), then with autocannon
 *   1. produce: 100 connections POST to 10 topics for 10 s;
 *   2. consume: 100 connections long-poll (auto-ack) 100 groups x 10 topics for 10 s,
 *      so the dispatcher tree holds up to 100 group consumers and 1,000 topic consumers;
 * read `/_stats` (the `Dispatcher.tree`), stop the proxy with SIGTERM (it must exit 0),
 * print requests/s, latency p50/p99 and the dispatcher stats, and write them to
 * bench/results/http.md. With `--screenshot <file>`, half-way through the
 * consume phase, the inspector's page (`/_inspect`) is opened in headless
 * Chromium (Debian's, see scripts/browser.ts) and saved as a PNG.
 *
 *   npm run bench:http
 *   npx tsx bench/http.ts --duration 3 --connections 50
 *   npm run bench:http -- --screenshot bench/results/inspector.png
 */
import { NodeServices } from "@effect/platform-node"
import { Console, Duration, Effect, Fiber } from "effect"
import type { Dispatcher } from "effect-dispatcher"
import { mkdirSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { screenshotInspector } from "../scripts/browser.js"
import { exitWhenDone } from "./child.js"
import { phase as loadPhase, type Result, startPixy } from "./pixy.js"

const here = dirname(fileURLToPath(import.meta.url))

const argValue = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}
const seconds = argValue("--duration", 10)
const connections = argValue("--connections", 100)
const screenshotAt = process.argv.indexOf("--screenshot")
const screenshot = screenshotAt >= 0 ? resolve(process.argv[screenshotAt + 1] ?? "bench/results/inspector.png") : undefined
const groups = 100
const topics = 10

// -----------------------------------------------------------------------------
// The run
// -----------------------------------------------------------------------------

interface Phase {
  readonly name: string
  readonly result: Result
}

const program = Effect.gen(function*() {
  yield* Console.log(`starting the proxy: ${process.execPath} --import tsx examples/pixy/main.ts`)
  const proxy = yield* startPixy({ PIXY_LONG_POLLING_TIMEOUT: "3 seconds" })
  const { url, lines } = proxy
  yield* Console.log(`proxy listening on ${url}; ${connections} connections, ${seconds} s per phase`)

  // one phase: every connection sends the n-th request as it is told, for `seconds`
  const phase = (name: string, requestFor: (n: number) => { method: string; path: string; body?: string }) =>
    loadPhase(url, connections, seconds, requestFor).pipe(Effect.tap((result) => Console.log(report(name, result))))
  const produce = yield* phase("produce", (n) => ({
    method: "POST",
    path: `/topics/topic-${n % topics}/messages?key=k${n}`,
    body: `message ${n}`
  }))
  const consumeLoad = phase("consume", (n) => ({
    method: "GET",
    path: `/topics/topic-${Math.floor(n / groups) % topics}/messages?group=group-${n % groups}&noAck`
  }))
  // with --screenshot: the inspector's page (/_inspect) in headless Chromium, half-way through the consume phase
  const consume = screenshot === undefined ? yield* consumeLoad : yield* Effect.gen(function*() {
    const running = yield* Effect.forkChild(consumeLoad)
    yield* Effect.sleep(Duration.seconds(Math.max(1, seconds / 2 - 3)))
    yield* screenshotInspector(`${url}/_inspect`, screenshot, 3_000).pipe(
      Effect.tap(() => Console.log(`inspector screenshot written to ${screenshot}`)),
      Effect.catch((error) => Console.error(`no screenshot: ${error.message}`))
    )
    return yield* Fiber.join(running)
  })

  const tree = yield* Effect.tryPromise(() => fetch(`${url}/_stats`).then((r) => r.json() as Promise<Dispatcher.Tree>))
  const topicLevels = tree.children.flatMap((group) => (group.downstream === undefined ? [] : [group.downstream]))
  const stats = { groups: tree.stats, topics: sumStats(topicLevels.map((level) => level.stats)) }
  const topicConsumers = topicLevels.reduce((n, level) => n + level.children.length, 0)

  // stop it as an operator would, and time it
  const stopStarted = Date.now()
  const exitCode = yield* proxy.stop
  const stopMillis = Date.now() - stopStarted

  const summary = {
    groupConsumersLive: tree.children.length,
    topicConsumersLive: topicConsumers,
    groupsRegistered: lines.filter((l) => l.includes("group registered")).length,
    groupsDeregistered: lines.filter((l) => l.includes("group deregistered")).length,
    exitCode: Number(exitCode),
    stopMillis
  }
  yield* Console.log("dispatcher stats (/_stats):")
  yield* Console.log(JSON.stringify(stats, null, 2))
  yield* Console.log(JSON.stringify(summary))

  const markdown = render([{ name: "produce", result: produce }, { name: "consume", result: consume }], stats, summary)
  mkdirSync(join(here, "results"), { recursive: true })
  writeFileSync(join(here, "results", "http.md"), markdown)
  yield* Console.log("written to bench/results/http.md")
  if (summary.exitCode !== 0) return yield* Effect.die(new Error(`the proxy exited ${summary.exitCode} on SIGTERM`))
}).pipe(Effect.scoped, Effect.provide(NodeServices.layer))

/** The topic level is one dispatcher per live group: add them up. */
const sumStats = (all: ReadonlyArray<Dispatcher.Stats>): Dispatcher.Stats => {
  const add = (pick: (s: Dispatcher.Stats) => number) => all.reduce((n, s) => n + pick(s), 0)
  return {
    live: add((s) => s.live),
    spawned: add((s) => s.spawned),
    successors: add((s) => s.successors),
    failures: add((s) => s.failures),
    accepted: add((s) => s.accepted),
    withdrawn: add((s) => s.withdrawn),
    rejected: {
      tooManyRequests: add((s) => s.rejected.tooManyRequests),
      unavailable: add((s) => s.rejected.unavailable),
      requestTimeout: add((s) => s.rejected.requestTimeout),
      childFailed: add((s) => s.rejected.childFailed)
    }
  }
}

const statuses = (result: Result) =>
  Object.entries(result.statusCodeStats).map(([code, { count }]) => `${code}: ${count}`).join(", ")

const report = (name: string, result: Result) =>
  `${name}: ${Math.round(result.requests.average)} req/s (${result.requests.total} in ${result.duration.toFixed(1)} s), ` +
  `latency p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms; statuses ${statuses(result)}; errors ${result.errors}`

const render = (
  phases: ReadonlyArray<Phase>,
  stats: { readonly groups: Dispatcher.Stats; readonly topics: Dispatcher.Stats },
  summary: Record<string, number>
) => {
  const load = os.loadavg().map((l) => l.toFixed(2)).join(" ")
  const row = ({ name, result }: Phase) =>
    `| ${name} | ${Math.round(result.requests.average)} | ${result.requests.total} | ${result.latency.p50} | ${result.latency.p99} | ${statuses(result)} | ${result.errors} |`
  const rejected = (s: Dispatcher.Stats) =>
    `${s.rejected.tooManyRequests} / ${s.rejected.requestTimeout} / ${s.rejected.unavailable} / ${s.rejected.childFailed}`
  const level = (name: string, s: Dispatcher.Stats) =>
    `| ${name} | ${s.accepted} | ${s.spawned} | ${s.live} | ${s.successors} | ${s.failures} | ${rejected(s)} |`
  return [
    "# HTTP load on the pixy proxy",
    "",
    `\`npm run bench:http\`, ${new Date().toISOString()}: Node ${process.version}, ${os.cpus().length} cores ` +
    `(${os.cpus()[0]?.model ?? "unknown"}), load average ${load} when it ended; autocannon and the proxy share the machine.`,
    "",
    `${connections} connections, ${seconds} s per phase. Produce: POST to ${topics} topics. Consume: auto-ack long polls ` +
    `(\`noAck\`) over ${groups} groups x ${topics} topics, round robin, \`PIXY_LONG_POLLING_TIMEOUT\` 3 s.`,
    "",
    "| phase | requests/s | requests | p50 ms | p99 ms | statuses | errors |",
    "|---|---|---|---|---|---|---|",
    ...phases.map(row),
    "",
    "Dispatcher stats at the end (`GET /_stats`, the `Dispatcher.tree`; the topic level sums the topic dispatchers of the live groups):",
    "",
    "| level | accepted | spawned | live | successors | failures | rejected 429 / 408 / 503 / failed |",
    "|---|---|---|---|---|---|---|",
    level("groups (root)", stats.groups),
    level("topics (per group)", stats.topics),
    "",
    `Live group consumers ${summary.groupConsumersLive}, live topic consumers ${summary.topicConsumersLive}; ` +
    `groups registered ${summary.groupsRegistered}, deregistered ${summary.groupsDeregistered}. ` +
    `SIGTERM: exit code ${summary.exitCode} after ${summary.stopMillis} ms.`,
    ""
  ].join("\n")
}

exitWhenDone(Effect.runPromise(program.pipe(Effect.timeout(Duration.seconds(seconds * 2 + 180)))))
