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
import {
  Advance,
  advance,
  ArmLastWords,
  Burst,
  type Cmd,
  commandArb,
  configArb,
  CrashLoop,
  End,
  endChild,
  PoisonSpawn,
  Send
} from "./commands.js"
import { Candidates, finalChecks, step } from "./compare.js"
import { type Config, Model } from "./model.js"
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
const finale = async (c: Candidates, real: Real): Promise<void> => {
  for (const m of c.list) m.shutdown()
  await real.shutdown("scope")
  await step(c, real, "after the final stop")
  for (let round = 0; round < 10 && !c.model.rootStopped; round++) {
    for (const entry of c.model.liveCtl()) {
      await endChild(c, real, entry.path, "success", `after the final end of ${entry.path}`)
    }
    await advance(c, real, 5_000, "after the final 5 s")
  }
  await finalChecks(c, real)
}

/** One history: the commands over a fresh model and a fresh real dispatcher, then the final stop and checks. */
const runHistory = async (config: Config, commands: Iterable<Cmd>): Promise<void> => {
  const candidates = new Candidates([new Model(config)])
  const real = new Real(config)
  await real.setup()
  try {
    let ran = 0
    const generated = [...commands]
    if (coverage !== undefined) coverage.set("commands generated", (coverage.get("commands generated") ?? 0) + generated.length)
    await fc.asyncModelRun(() => ({ model: candidates, real }), generated.map((c) => ({
      check: (m: Candidates) => c.check(m),
      run: (m: Candidates, r: Real) => {
        ran++
        return c.run(m, r)
      },
      toString: () => c.toString()
    })))
    await finale(candidates, real)
    tally(candidates.model, ran)
  } finally {
    await real.teardown()
  }
}

const history = fc.asyncProperty(
  configArb,
  fc.commands([commandArb], { maxCommands: 80, size: "max", ...(replayPath === undefined ? {} : { replayPath }) }),
  runHistory
)

if (coverage !== undefined) {
  afterAll(() => {
    const lines = [...coverage].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `  ${k}: ${v}`)
    console.log(`coverage over the histories run:\n${lines.join("\n")}`)
  })
}

/** A configuration with every option off, for the fixed histories. */
const plain: Config = {
  rootCapacity: 1,
  innerCapacity: 1,
  rootTimeout: undefined,
  innerTimeout: undefined,
  restart: "default",
  idleTimeToLive: undefined,
  rootMaxChildren: undefined,
  innerMaxChildren: undefined,
  rootOverflowWait: undefined,
  innerOverflowWait: undefined,
  leafCapacity: 1,
  leafMaxChildren: undefined,
  tOnStop: "drain"
}

describe("model-based: the real dispatcher against the reference model", () => {
  // Histories the generator once found, kept as fixed cases.
  it.effect("a deadline and a successor whose spawn throws, due at the same instant: either order", () =>
    Effect.promise(() =>
      runHistory(
        { ...plain, rootCapacity: 1, innerCapacity: 1, rootTimeout: 40, restart: "short" },
        [
          new Send({ root: "b", inner: "x", leaf: "u", work: 0, badRoot: false, badInner: false, mode: "send" }, false),
          new PoisonSpawn("b"),
          new Advance(10),
          new Send({ root: "a", inner: "x", leaf: "u", work: 0, badRoot: false, badInner: false, mode: "send" }, false),
          new Advance(25),
          new End(1, "fail"), // b fails at 35: its successor is due at 40, with b's request's deadline
          new CrashLoop(0, 2, "fail")
        ]
      )
    ))

  it.effect("a router busy placing a batch takes what a child's last words send only on its next turn", () =>
    Effect.promise(() =>
      runHistory(
        { ...plain, restart: "short" },
        [
          new PoisonSpawn("g/h/v"),
          new PoisonSpawn("g/h"),
          new ArmLastWords("g/h"),
          new Send({ root: "g", inner: "h", leaf: "u", work: 0, badRoot: false, badInner: false, mode: "send" }, false),
          // g and h start inside this send; v's spawn throws, so h's level ends, and h, ending, sends for g/h
          // while g's router is still placing the first request
          new Burst([
            { _tag: "send", spec: { root: "g", inner: "h", leaf: "v", work: 0, badRoot: false, badInner: false, mode: "send" } },
            { _tag: "take", child: 0 }
          ])
        ]
      )
    ))

  it.effect("a router waiting on its mailbox places a request handed to it inside the placement of another", () =>
    Effect.promise(() =>
      runHistory(
        { ...plain, restart: "short" },
        [
          new ArmLastWords("g/h"),
          new PoisonSpawn("g/h/u"),
          // g's router is up and waiting
          new Send({ root: "g", inner: "x", leaf: "u", work: 0, badRoot: false, badInner: false, mode: "send" }, false),
          // placed straight from the sender: h starts, u's spawn throws, h's level ends and h, ending, sends for
          // g/h: g's router, still waiting, places it at once, into h's mailbox (h's successor serves it)
          new Burst([
            { _tag: "send", spec: { root: "g", inner: "h", leaf: "u", work: 0, badRoot: false, badInner: false, mode: "send" } }
          ])
        ]
      )
    ))

  it.effect("a handler cut off at its deadline ends after the deadline timer has answered everything due then", () =>
    Effect.promise(() => {
      const spec = (root: string, work: number) => ({ root, inner: "x", leaf: "u", work, badRoot: false, badInner: false, mode: "send" as const })
      return runHistory(
        { ...plain, rootTimeout: 40, rootMaxChildren: 2, restart: "short" },
        [
          new Send(spec("s", 30), false),
          new Advance(1),
          // t and a pending (for s's place) both due at 41; s is revived and its handler is cut off at 41 too
          new Burst([{ _tag: "send", spec: spec("t", 40) }, { _tag: "send", spec: spec("a", 0) }]),
          new ArmLastWords("t"),
          new Send(spec("s", 30), false),
          new Advance(1000)
        ]
      )
    }))

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
