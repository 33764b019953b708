/**
 * The core never loads cluster code: a fresh Node process that imports the
 * package's entry (its sources through tsx, and the built `dist` entry in
 * plain Node), or `Sharded` alone, loads no module of `effect/cluster`,
 * `effect/rpc`, `@effect/sql-pg` or `@effect/platform-node`, nor the sharded
 * machinery. The engine loads when a `Sharded` layer is built. As a check
 * that the probe sees such modules at all, importing the machinery does load
 * `effect/cluster`.
 */
import { assert, describe, it } from "@effect/vitest"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const root = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "..", "..")

/** The modules a fresh process loads to import `entry` (a path under the repository); TypeScript through tsx. */
const loadedBy = (entry: string, loader: ReadonlyArray<string> = ["--import", "tsx"]): Array<string> => {
  const out = ChildProcess.execFileSync(
    process.execPath,
    [...loader, Path.join(root, "test/sharded/support/loaded-modules.mjs"), Path.join(root, entry)],
    { cwd: root, encoding: "utf8", timeout: 60_000 }
  )
  return JSON.parse(out.trim().split("\n").at(-1)!) as Array<string>
}

const engineLike = /\/effect\/dist\/(cluster|rpc)\/|@effect\/sql-pg|@effect\/platform-node|\/internal\/sharded\/(engine|postgres)\./

describe("what importing the package loads", () => {
  it("the package entry loads no cluster code, nor the optional peers", () => {
    const loaded = loadedBy("src/index.ts")
    assert.isTrue(loaded.some((url) => url.endsWith("/src/Sharded.ts")), "the index does export Sharded")
    assert.deepStrictEqual(loaded.filter((url) => engineLike.test(url)), [])
  }, 60_000)

  it("the Sharded module alone loads none either", () => {
    assert.deepStrictEqual(loadedBy("src/Sharded.ts").filter((url) => engineLike.test(url)), [])
  }, 60_000)

  it("the built package entry, in plain Node, loads none either", () => {
    // built inside the repository, so that `effect` resolves from its node_modules
    const out = "node_modules/.cache/effect-dispatcher-loading-test"
    try {
      ChildProcess.execFileSync(
        process.execPath,
        [Path.join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json", "--outDir", out],
        { cwd: root, timeout: 120_000 }
      )
      const loaded = loadedBy(`${out}/index.js`, [])
      assert.isTrue(loaded.some((url) => url.endsWith("/Sharded.js")))
      assert.deepStrictEqual(loaded.filter((url) => engineLike.test(url)), [])
    } finally {
      Fs.rmSync(Path.join(root, out), { recursive: true, force: true })
    }
  }, 150_000)

  it("the machinery, once loaded, does load effect/cluster (the probe sees it)", () => {
    const loaded = loadedBy("src/internal/sharded/engine.ts")
    assert.isTrue(loaded.some((url) => url.includes("/effect/dist/cluster/")))
  }, 60_000)
})
