/**
 * A real browser for the inspector's page: Debian's `chromium` (apt-get install
 * chromium), driven by `playwright-core` (never `npx playwright install`:
 * no browser is downloaded). Used by `npm run test:browser` and by
 * `npm run bench:http -- --screenshot <file>`.
 */
import { Effect, type Scope } from "effect"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type BrowserContext, chromium, type Page } from "playwright-core"

/** Where Chromium is: `$CHROMIUM`, else Debian's. */
export const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium"

/** Headless, sandbox off (containers), nothing fetched behind the page's back. */
const flags = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync"
]

export class NoChromium extends Error {
  constructor() {
    super(`no Chromium at ${chromiumPath}: install Debian's (apt-get install -y chromium) or set CHROMIUM`)
  }
}

/**
 * A page in a fresh headless Chromium (a profile of its own in a temporary
 * directory), closed with the Scope; every request it makes carries `headers`.
 */
export const browserPage = (
  headers: Record<string, string> = {}
): Effect.Effect<{ readonly page: Page; readonly context: BrowserContext }, NoChromium | Error, Scope.Scope> =>
  Effect.gen(function*() {
    if (!existsSync(chromiumPath)) return yield* Effect.fail(new NoChromium())
    // a Chromium just installed may fail its very first start (seen once in CI): one more try, on a fresh profile
    const context = yield* launch(headers).pipe(Effect.retry({ times: 1 }))
    const page = context.pages()[0] ?? (yield* Effect.tryPromise({
      try: () => context.newPage(),
      catch: (cause) => new Error(`Chromium opened no page: ${describeError(cause)}`, { cause })
    }))
    return { page, context }
  })

/** One start of Chromium on a profile of its own (removed with the Scope). */
const launch = (headers: Record<string, string>) =>
  Effect.gen(function*() {
    const profile = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "effect-dispatcher-chromium-"))),
      (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    )
    return yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          chromium.launchPersistentContext(profile, {
            executablePath: chromiumPath,
            headless: true,
            args: flags,
            viewport: { width: 1400, height: 1000 },
            extraHTTPHeaders: headers
          }),
        catch: (cause) => new Error(`Chromium at ${chromiumPath} did not start: ${describeError(cause)}`, { cause })
      }),
      (context) => Effect.promise(() => context.close().catch(() => undefined))
    )
  })

/** What went wrong, in words: an error's message (and its cause's), else the value. */
export const describeError = (error: unknown): string => {
  if (!(error instanceof Error)) return String(error)
  const cause = error.cause === undefined ? "" : ` (cause: ${describeError(error.cause)})`
  return `${error.message}${cause}`
}

/** Open the inspector at `url` and save a screenshot (of the window: 1400 x 1000) to `file` once it has run for `settle`. */
export const screenshotInspector = (url: string, file: string, settle: number, headers: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const { page } = yield* browserPage(headers)
    yield* Effect.tryPromise(() => page.goto(url, { waitUntil: "load" }))
    yield* Effect.tryPromise(() => page.waitForSelector("#dispatchers tbody tr", { timeout: 10_000 }))
    yield* Effect.sleep(settle)
    yield* Effect.tryPromise(() => page.screenshot({ path: file }))
  }).pipe(Effect.scoped)
