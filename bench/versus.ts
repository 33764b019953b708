/**
 * This checkout against an earlier one, side by side in one run: the same
 * workloads of the effect-dispatcher peer, each measurement in a fresh
 * process, the two trees alternating, so a regression shows as a ratio
 * rather than as two absolute figures taken on different days.
 *
 *   npx tsx bench/versus.ts --ref d7076d6 [--workloads w1-k1000,w4] [--reps 5] [--quick]
 *
 * The earlier tree is checked out with `git worktree` into a temporary
 * directory (its node_modules linked to this one's) and removed at the end.
 */
import { execFileSync, spawnSync } from "node:child_process"
import { mkdtempSync, rmSync, symlinkSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { nodeArgs, resultIn } from "./child.js"
import type { Measured } from "./types.js"

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(name)
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback
}

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const ref = arg("--ref", "HEAD~1")
const workloads = arg("--workloads", "w1-k1000,w4").split(",")
const reps = Number(arg("--reps", "5"))
const quick = process.argv.includes("--quick")

const measure = (tree: string, workload: string): Measured => {
  const out = spawnSync(process.execPath, nodeArgs(join(tree, "bench", "worker.ts"), ["effect-dispatcher", workload], quick), {
    cwd: tree,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
    timeout: 600_000
  })
  const measured = resultIn<Measured>(out.stdout)
  if (out.status !== 0 || measured === undefined) throw new Error(`${tree} ${workload} failed:\n${out.stderr}`)
  if (measured.wrong !== 0) throw new Error(`${tree} ${workload}: ${measured.wrong} wrong answers`)
  return measured
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const main = () => {
  const commit = execFileSync("git", ["rev-parse", "--short", ref], { cwd: root, encoding: "utf8" }).trim()
  const here = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim()
  const dirty = execFileSync("git", ["status", "--porcelain", "--", "src", "bench"], { cwd: root, encoding: "utf8" }).trim() !== ""
  const earlier = mkdtempSync(join(tmpdir(), "effect-dispatcher-versus-"))
  execFileSync("git", ["worktree", "add", "--detach", earlier, commit], { cwd: root, stdio: "ignore" })
  const cleanup = () => {
    try {
      execFileSync("git", ["worktree", "remove", "--force", earlier], { cwd: root, stdio: "ignore" })
    } catch {
      rmSync(earlier, { recursive: true, force: true })
    }
  }
  process.on("SIGINT", () => (cleanup(), process.exit(130)))
  try {
    symlinkSync(join(root, "node_modules"), join(earlier, "node_modules"))
    const trees = [["this", root], [commit, earlier]] as const
    const figures = new Map<string, Array<Measured>>()
    for (let rep = 0; rep < reps; rep++) {
      for (const workload of workloads) {
        for (const [name, tree] of rep % 2 === 0 ? trees : [...trees].reverse()) {
          const m = measure(tree, workload)
          const key = `${name}|${workload}`
          figures.set(key, [...(figures.get(key) ?? []), m])
          console.error(`[${rep + 1}/${reps}] ${workload} ${name}: ${Math.round(m.value).toLocaleString("en-US")} ${m.unit}`)
        }
      }
    }
    console.log(`\n${here}${dirty ? " (with uncommitted changes)" : ""} vs ${commit}, Node ${process.version}, ${reps} repetitions each, alternating:\n`)
    // per CPU-second of the measuring process too: less moved by other work on a shared machine
    console.log("| workload | this | earlier | this ÷ earlier | per CPU-second: this ÷ earlier |")
    console.log("|---|---:|---:|---:|---:|")
    for (const workload of workloads) {
      const a = figures.get(`this|${workload}`)!
      const b = figures.get(`${commit}|${workload}`)!
      const ma = median(a.map((m) => m.value))
      const mb = median(b.map((m) => m.value))
      const cpu = (ms: ReadonlyArray<Measured>) => ms.map((m) => m.extra.perCpuSecond).filter((x): x is number => x !== undefined)
      const ca = cpu(a)
      const cb = cpu(b)
      const perCpu = ca.length > 0 && cb.length > 0 ? (median(ca) / median(cb)).toFixed(3) : "n/a"
      const unit = a[0]!.unit
      console.log(
        `| ${workload} (${unit}) | ${Math.round(ma).toLocaleString("en-US")} | ${Math.round(mb).toLocaleString("en-US")} | ${(ma / mb).toFixed(3)} | ${perCpu} |`
      )
    }
  } finally {
    cleanup()
  }
}

main()
