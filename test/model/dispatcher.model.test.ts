/**
 * Model-based testing (QuickCheck's state machines, fast-check's
 * `fc.commands`): random histories of commands run over the real dispatcher
 * and the reference model side by side; every answer is compared after every
 * command, and the invariants of DESIGN 6 ("nothing lost") and 5/7 (a clean
 * stop) are checked once each history has stopped.
 *
 * Runs: FC_RUNS (default 300; `npm run test:long` does 20,000).
 * Replay a failure: FC_SEED=<seed> FC_PATH=<path> [FC_REPLAY=<replayPath>] npx vitest run test/model
 * (fast-check prints all three when a property fails).
 */
import { afterAll, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import fc from "fast-check"
import { commandArb, configArb } from "./commands.js"
import { compareAll, finalChecks } from "./compare.js"
import { Model } from "./model.js"
import { Real } from "./real.js"

const numRuns = Number(process.env.FC_RUNS ?? 300)
const seed = process.env.FC_SEED === undefined ? (Date.now() ^ (Math.random() * 0x100000000)) | 0 : Number(process.env.FC_SEED)
const path = process.env.FC_PATH
const replayPath = process.env.FC_REPLAY
/** FC_STATS=1 prints how often each kind of event happened across the histories */
const coverage = process.env.FC_STATS === undefined ? undefined : new Map<string, number>()
const tally = (model: Model, commands: number) => {
  if (coverage === undefined) return
  for (const [what, n] of model.coverage) coverage.set(what, (coverage.get(what) ?? 0) + n)
  coverage.set("histories", (coverage.get("histories") ?? 0) + 1)
  coverage.set("commands run", (coverage.get("commands run") ?? 0) + commands)
  coverage.set("requests", (coverage.get("requests") ?? 0) + model.requests.size)
  coverage.set("max model time (ms)", Math.max(coverage.get("max model time (ms)") ?? 0, model.now))
}

/**
 * After the generated commands: stop the root by closing its Scope (if not
 * stopped yet: the enclosing finalizer is then checked too), end every
 * controlled child and let time pass until everything has ended.
 */
const finale = async (model: Model, real: Real): Promise<void> => {
  if (model.rootRunning) model.shutdown()
  await real.shutdown("scope")
  await compareAll(model, real, "after the final stop")
  for (let round = 0; round < 10 && !model.rootStopped; round++) {
    for (const entry of model.liveCtl()) {
      model.end(entry.path, "success")
      await real.end(entry.path, "success")
      await compareAll(model, real, `after the final end of ${entry.path}`)
    }
    model.advance(5_000)
    await real.advance(5_000)
    await compareAll(model, real, "after the final 5 s")
  }
  await finalChecks(model, real)
}

const history = fc.asyncProperty(
  configArb,
  fc.commands([commandArb], { maxCommands: 80, size: "max", ...(replayPath === undefined ? {} : { replayPath }) }),
  async (config, commands) => {
    const model = new Model(config)
    const real = new Real(config)
    await real.setup()
    try {
      let ran = 0
      const generated = [...commands]
      if (coverage !== undefined) coverage.set("commands generated", (coverage.get("commands generated") ?? 0) + generated.length)
      await fc.asyncModelRun(() => ({ model, real }), generated.map((c) => ({
        check: (m: Model) => c.check(m),
        run: (m: Model, r: Real) => {
          ran++
          return c.run(m, r)
        },
        toString: () => c.toString()
      })))
      await finale(model, real)
      tally(model, ran)
    } finally {
      await real.teardown()
    }
  }
)

if (coverage !== undefined) {
  afterAll(() => {
    const lines = [...coverage].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `  ${k}: ${v}`)
    console.log(`coverage over the histories run:\n${lines.join("\n")}`)
  })
}

describe("model-based: the real dispatcher against the reference model", () => {
  it.effect(`${numRuns} generated histories answer as the model says, and every invariant holds`, (ctx) => {
    // printed if the test fails in any way, a time-out included (fast-check prints seed and path itself)
    ctx.onTestFailed(() => {
      console.log(`model-based histories: FC_SEED=${seed}${path === undefined ? "" : ` FC_PATH=${path}`} (FC_RUNS=${numRuns})`)
    })
    return Effect.promise(() =>
      fc.assert(history, {
        numRuns,
        seed,
        verbose: Number(process.env.FC_VERBOSE ?? 0),
        // a history that livelocks fails (and shrinks) instead of hanging
        timeout: 20_000,
        ...(path === undefined ? {} : { path })
      })
    )
  }, { timeout: Math.max(120_000, numRuns * 100) })
})
