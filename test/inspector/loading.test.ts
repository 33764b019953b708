/**
 * The core stays light: a fresh Node process that imports the package's
 * entry (which exports `Inspector`), or `Inspector` alone, loads no module of
 * `effect/http`, `effect/encoding` or `@effect/platform-node` that importing
 * `effect` itself does not (Effect's core loads a few of them: `Headers`,
 * `Cookies`, `Base64`...), nor the inspector's routes, page or hub. They load
 * when `Inspector.layer` is built. As a check that the probe sees such
 * modules at all, the routes module does load the router.
 */
import { assert, describe, it } from "@effect/vitest"
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const root = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "..", "..")

/** The modules a fresh process loads to import `entry` (TypeScript through tsx). */
const loadedBy = (entry: string): Array<string> => {
  const out = ChildProcess.execFileSync(
    process.execPath,
    ["--import", "tsx", Path.join(root, "test/sharded/support/loaded-modules.mjs"), Path.join(root, entry)],
    { cwd: root, encoding: "utf8", timeout: 60_000 }
  )
  return JSON.parse(out.trim().split("\n").at(-1)!) as Array<string>
}

const httpLike = /\/effect\/dist\/(http|encoding)\/|@effect\/platform-node|\/internal\/inspector\/(routes|page|hub)\./

describe("what importing the Inspector loads", () => {
  let effectItself: Set<string> | undefined
  /** The HTTP-like modules `entry` loads beyond those `effect` itself loads. */
  const beyondEffect = (entry: string): Array<string> => {
    effectItself ??= new Set(loadedBy("test/inspector/support/effect-only.ts"))
    return loadedBy(entry).filter((url) => httpLike.test(url) && !effectItself!.has(url))
  }

  it("the package entry exports Inspector and loads no HTTP module beyond Effect's own", () => {
    assert.isTrue(loadedBy("src/index.ts").some((url) => url.endsWith("/src/Inspector.ts")), "the index does export Inspector")
    assert.deepStrictEqual(beyondEffect("src/index.ts"), [])
  }, 120_000)

  it("the Inspector module alone loads none either", () => {
    assert.deepStrictEqual(beyondEffect("src/Inspector.ts"), [])
  }, 120_000)

  it("the routes, once loaded, do load the router and the SSE encoder (the probe sees them)", () => {
    const loaded = beyondEffect("src/internal/inspector/routes.ts")
    assert.isTrue(loaded.some((url) => url.endsWith("/effect/dist/http/HttpRouter.js")))
    assert.isTrue(loaded.some((url) => url.endsWith("/effect/dist/encoding/Sse.js")))
  }, 120_000)
})
