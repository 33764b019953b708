/**
 * `npm run test:browser`: the inspector's page in a real browser, headless
 * Chromium from Debian's `chromium` package driven by `playwright-core`,
 * against the pixy proxy (its own process) under load:
 *
 *   1. the proxy starts with a bearer token for the inspector; without it the
 *      page is refused (403);
 *   2. autocannon loads it (10 connections producing to 10 topics, 20
 *      long-polling over 20 groups x 10 topics) for the whole test;
 *   3. the page (the browser sends the token) shows the tree of dispatchers
 *      (the root and group levels), the levels with their charts, and no
 *      error (a script or style the page's Content-Security-Policy blocked
 *      would be one);
 *   4. a key is made stuck (long polls on a topic nobody produces to, behind
 *      one another): it appears in the stuck list within 2 s of its oldest
 *      request passing the threshold (PIXY_INSPECT_STUCK_AFTER, 1 s);
 *   5. a screenshot is saved (default: a temporary file; `--screenshot <file>`).
 *
 * Not part of `npm test`, which runs without a browser. `.ci/run` installs
 * Chromium with apt (when /usr/bin/chromium is missing) and runs it.
 */
import { NodeServices } from "@effect/platform-node"
import { Console, Duration, Effect, Fiber } from "effect"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { phase, startPixy } from "../bench/pixy.js"
import { browserPage, describeError } from "./browser.js"

const arg = process.argv.indexOf("--screenshot")
const screenshot = resolve(arg >= 0 ? process.argv[arg + 1]! : join(tmpdir(), "effect-dispatcher-inspector.png"))
const token = "browser-test-token"
const stuckAfter = 1_000
const groups = 20
const topics = 10

class Failed extends Error {}

const check = (condition: boolean, message: string) =>
  condition ? Effect.void : Effect.fail(new Failed(message))

/** One step that runs a Promise: its failure says which step, and why. */
const step = <A>(label: string, run: (signal: AbortSignal) => PromiseLike<A>) =>
  Effect.tryPromise({ try: run, catch: (cause) => new Failed(`${label}: ${describeError(cause)}`) })

const program = Effect.gen(function*() {
  const proxy = yield* startPixy({
    PIXY_LONG_POLLING_TIMEOUT: "20 seconds",
    PIXY_INSPECT_TOKEN: token,
    PIXY_INSPECT_STUCK_AFTER: `${stuckAfter} millis`
  })
  const inspector = `${proxy.url}/_inspect`
  yield* Console.log(`proxy at ${proxy.url}`)

  // 1. the token is asked for
  const refused = yield* step("asking for the page without the token", () => fetch(inspector).then((r) => r.status))
  yield* check(refused === 403, `without the token the page answered ${refused}, not 403`)

  // 2. load for as long as the test runs: producers and long-polling consumers on connections of their own
  // (on shared ones, consumers waiting for messages would soon hold every connection)
  const produce = phase(proxy.url, 10, 60, (n) => ({
    method: "POST",
    path: `/topics/topic-${n % topics}/messages?key=k${n}`,
    body: `message ${n}`
  }))
  const consume = phase(proxy.url, 20, 60, (n) => ({
    method: "GET",
    path: `/topics/topic-${Math.floor(n / groups) % topics}/messages?group=group-${n % groups}&noAck`
  }))
  const load = yield* Effect.forkChild(Effect.all([produce, consume], { concurrency: 2 }))
  yield* Effect.sleep("2 seconds")

  // 3. the page, with the token
  const { page } = yield* browserPage({ authorization: `Bearer ${token}` })
  const problems: Array<string> = []
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()}`)
  })
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`))
  yield* step("loading the page", () => page.goto(inspector, { waitUntil: "load" }))
  // locators, not page functions: the page's CSP forbids eval, which a text predicate needs (Chromium 156.0.8078.114 enforces it)
  yield* step("waiting for the tree of dispatchers", () =>
    page.locator("#dispatchers tbody tr").nth(1).waitFor({ state: "attached", timeout: 10_000 }))
  const rows = page.locator("#dispatchers tbody tr")
  const paths = yield* step("reading the tree", async () => {
    const out: Array<string> = []
    for (let i = 0, n = await rows.count(); i < n; i++) out.push((await rows.nth(i).getAttribute("data-path")) ?? "")
    return out
  })
  yield* check(paths[0] === "groups", `the tree's first row is ${paths[0]}, not the root "groups"`)
  yield* check(paths.some((p) => /^groups\/group-\d+\/topics$/.test(p)), `no group level in the tree: ${paths.join(", ")}`)
  // a throughput chart per level, drawn once two frames have come
  yield* step("waiting for a chart per level", () =>
    page.locator(".level svg polyline").nth(1).waitFor({ state: "attached", timeout: 5_000 }))
  const levels = yield* step("counting the charts", () => page.locator(".level svg polyline").count())
  const status = yield* step("reading the status", () => page.textContent("#status"))
  yield* check(status === "running", `the status reads ${status}`)
  yield* Console.log(`the page shows ${paths.length} dispatchers, ${levels} charts so far, status ${status}`)

  // 4. a stuck key: long polls on a topic nobody produces to, one behind the other
  const polls = yield* Effect.forEach([1, 2, 3], () =>
    Effect.forkChild(
      step("a long poll nobody answers", (signal) =>
        fetch(`${proxy.url}/topics/nobody-writes-here/messages?group=stuck-group&noAck`, { signal }))
    ))
  const sent = Date.now()
  yield* step("waiting for the stuck key in the stuck list", () =>
    page.waitForSelector("#stuck tr[data-key=\"nobody-writes-here\"]", { timeout: stuckAfter + 4_000 }))
  const seenAfter = Date.now() - sent - stuckAfter
  yield* Console.log(`the stuck key appeared ${seenAfter} ms after its oldest request passed ${stuckAfter} ms`)
  yield* check(seenAfter <= 2_000, `the stuck key appeared ${seenAfter} ms after passing the threshold (more than 2 s)`)
  const age = yield* step("reading the stuck key's age", () => page.textContent("#stuck tr[data-key=\"nobody-writes-here\"] td.age"))
  yield* Console.log(`its age on the page: ${age}`)

  // 5. the screenshot, the page at rest a moment
  yield* Effect.sleep("1500 millis")
  yield* step("taking the screenshot", () => page.screenshot({ path: screenshot, fullPage: true }))
  yield* Console.log(`screenshot: ${screenshot}`)
  yield* check(problems.length === 0, `the page reported errors:\n${problems.join("\n")}`)

  yield* Effect.forEach(polls, Fiber.interrupt)
  yield* Fiber.interrupt(load)
  const exitCode = yield* proxy.stop
  yield* check(exitCode === 0, `the proxy exited ${exitCode} on SIGTERM`)
  yield* Console.log("browser test passed")
}).pipe(Effect.scoped, Effect.provide(NodeServices.layer), Effect.timeout(Duration.minutes(3)))

Effect.runPromise(program).then(
  () => process.exit(0),
  (error) => {
    console.error(`browser test FAILED: ${describeError(error)}`)
    process.exit(1)
  }
)
