/**
 * Profile one measurement: runs bench/worker.ts under `node --cpu-prof` and
 * prints the frames with the most self time (the whole process: load,
 * warm-up and timed phase; the two latter run the same code).
 *
 *   npx tsx bench/profile.ts effect-dispatcher w1-k1 [--quick] [--top 25]
 *   npx tsx bench/profile.ts "options:requestTimeout: 1 minute" w1-k1000   # a variant of bench/options.ts
 */
import { spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs"
import { SourceMap } from "node:module"
import { tmpdir, userInfo } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { nodeArgs, resultIn } from "./child.js"

interface Profile {
  readonly nodes: ReadonlyArray<{
    readonly id: number
    readonly callFrame: {
      readonly functionName: string
      readonly url: string
      readonly lineNumber: number
      readonly columnNumber: number
    }
  }>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const here = dirname(fileURLToPath(import.meta.url))
const [peer = "effect-dispatcher", workload = "w1-k1"] = process.argv.slice(2).filter((a) => !a.startsWith("--"))
const quick = process.argv.includes("--quick")
const topIndex = process.argv.indexOf("--top")
const top = topIndex > 0 ? Number(process.argv[topIndex + 1]) : 25
const dir = mkdtempSync(join(tmpdir(), "bench-prof-"))
const run = spawnSync(
  process.execPath,
  [
    "--cpu-prof",
    "--cpu-prof-dir",
    dir,
    ...(peer.startsWith("options:")
      ? nodeArgs(join(here, "options.ts"), ["--child", peer.slice("options:".length), workload], quick)
      : nodeArgs(join(here, "worker.ts"), [peer, workload], quick))
  ],
  { cwd: join(here, ".."), encoding: "utf8" }
)
const result = resultIn(run.stdout)
console.log(result === undefined ? run.stderr : `RESULT ${JSON.stringify(result)}`)
const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"))
if (file === undefined) throw new Error("no profile written")
const profile = JSON.parse(readFileSync(join(dir, file), "utf8")) as Profile
rmSync(dir, { recursive: true, force: true })

/**
 * tsx compiles each .ts file to one line; its cache (os.tmpdir()/tsx-<uid>) keeps
 * the code with its source map, so a frame of src/ or bench/ can be mapped back
 * to its line in the .ts file (the newest cache entry for that file).
 */
const sourceMaps = new Map<string, SourceMap | undefined>()
const mapFor = (path: string): SourceMap | undefined => {
  if (sourceMaps.has(path)) return sourceMaps.get(path)
  let best: { map: SourceMap; mtime: number } | undefined
  const cache = join(tmpdir(), `tsx-${userInfo().uid}`)
  if (existsSync(cache)) {
    for (const name of readdirSync(cache)) {
      const file = join(cache, name)
      let stat
      try {
        stat = statSync(file)
      } catch {
        continue
      }
      if (!stat.isFile() || (best !== undefined && stat.mtimeMs <= best.mtime)) continue
      const text = readFileSync(file, "utf8")
      if (!text.includes(JSON.stringify(path))) continue
      try {
        const entry = JSON.parse(text) as { map?: { sources?: Array<string> } }
        if (entry.map?.sources?.[0] === path) best = { map: new SourceMap(entry.map as any), mtime: stat.mtimeMs }
      } catch {
        // not a cache entry
      }
    }
  }
  sourceMaps.set(path, best?.map)
  return best?.map
}

const sources = new Map<string, Array<string>>()
const locate = (url: string, line: number, column: number): string => {
  if (url === "") return ""
  if (!url.startsWith("file://") || url.includes("/node_modules/")) {
    return ` ${url.replace(/^.*node_modules\//, "")}:${line + 1}`
  }
  const path = fileURLToPath(url)
  const short = path.replace(/^.*?\/(src|bench)\//, "$1/")
  const entry = mapFor(path)?.findEntry(line, column) as { originalLine?: number } | undefined
  if (entry?.originalLine === undefined) return ` ${short}:${line + 1}:${column + 1}`
  if (!sources.has(path)) sources.set(path, readFileSync(path, "utf8").split("\n"))
  const text = sources.get(path)![entry.originalLine]?.trim().slice(0, 70) ?? ""
  return ` ${short}:${entry.originalLine + 1}  \`${text}\``
}

const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const self = new Map<string, number>()
let total = 0
profile.samples.forEach((id, i) => {
  const frame = byId.get(id)!.callFrame
  const key = `${frame.functionName || "(anonymous)"}${locate(frame.url, frame.lineNumber, frame.columnNumber)}`
  const dt = profile.timeDeltas[i] ?? 0
  self.set(key, (self.get(key) ?? 0) + dt)
  total += dt
})
console.log(`top ${top} frames by self time of ${(total / 1e6).toFixed(2)} s sampled (${peer} ${workload})`)
for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${(us / 1e3).toFixed(0).padStart(7)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${key}`)
}
