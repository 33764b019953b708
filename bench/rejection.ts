/**
 * Where W6's rejection cost goes: the same caller loop as W6's rejection
 * phase, one fiber, with `tryCall` swapped for ever less of the real path:
 * a succeeded Exit, the adapter's `catchCause` around it, a failed Exit
 * through it (Effect's own cost of a typed failure), `withFiber` around that,
 * the dispatcher's `place` alone, then `Dispatcher.call` on a full mailbox.
 * Each step runs in a fresh process (a loop that saw other shapes runs
 * slower), 5 repetitions; the minimum is the figure (the machine is shared,
 * and noise only ever adds), the median beside it.
 *
 *   npx tsx bench/rejection.ts
 */
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Effect, Exit } from "effect"
import { Dispatcher } from "effect-dispatcher"
import { place } from "../src/internal/dispatcher.js"
import type { DispatcherImpl } from "../src/internal/root.js"
import { rejectedOn } from "./peers/rejected.js"

const steps = {
  "a succeeded Exit": "loop overhead: suspend, flatMap",
  "the adapter's catchCause around a succeeded Exit": "+ one catchCause frame",
  "a failed Exit (pre-built) through catchCause": "Effect's cost of a typed failure: unwind to the handler",
  "withFiber, then the failed Exit": "+ the primitive `call` is built on",
  "withFiber, then place() on the full mailbox": "+ the dispatcher's routing: registry, capacity check, counter",
  "Dispatcher.call on the full mailbox": "the whole public path (keyOf, tracer check, answer)"
} as const
type Step = keyof typeof steps

const CALLS = 2_000_000
const REPETITIONS = 5

const orRejected = rejectedOn("TooManyRequests")
const succeeded = Exit.succeed(1)
const failed = Exit.fail({ _tag: "TooManyRequests" })

/** ns per call of `tryCall` in W6's caller loop, after a warm-up. */
const measure = (tryCall: () => Effect.Effect<number, unknown>) =>
  Effect.gen(function*() {
    let ns = 0
    for (let round = 0; round < 4; round++) {
      let i = 0
      const loop: Effect.Effect<void, unknown> = Effect.suspend(() =>
        i++ >= CALLS ? Effect.void : Effect.flatMap(tryCall(), () => loop)
      )
      const t0 = performance.now()
      yield* loop
      ns = ((performance.now() - t0) * 1e6) / CALLS
    }
    return ns
  })

const runStep = (step: Step) =>
  Effect.gen(function*() {
    // a child that holds its first request forever: after two sends its mailbox of one is full, and every
    // call is refused; at the end the stop interrupts it
    const dispatcher = yield* Dispatcher.make<string, number>({
      keyOf: (key) => key,
      spawn: (spec) => Dispatcher.serve(spec, () => Effect.never, { onStop: "interrupt" })
    }, { mailboxCapacity: 1 })
    yield* Dispatcher.send(dispatcher, "hot")
    yield* Dispatcher.send(dispatcher, "hot")
    const core = (dispatcher as unknown as DispatcherImpl<any, any, any>).core
    switch (step) {
      case "a succeeded Exit":
        return yield* measure(() => succeeded)
      case "the adapter's catchCause around a succeeded Exit":
        return yield* measure(() => orRejected(succeeded))
      case "a failed Exit (pre-built) through catchCause":
        return yield* measure(() => orRejected(failed))
      case "withFiber, then the failed Exit":
        return yield* measure(() => orRejected(Effect.withFiber(() => failed)))
      case "withFiber, then place() on the full mailbox":
        return yield* measure(() =>
          orRejected(Effect.withFiber(() => place(core, "hot", "hot", undefined, Infinity) as Exit.Exit<never, unknown>))
        )
      case "Dispatcher.call on the full mailbox":
        return yield* measure(() => orRejected(Dispatcher.call(dispatcher, "hot")))
    }
  }).pipe(Effect.scoped)

const child = process.argv[2]
if (child !== undefined) {
  Effect.runPromise(runStep(child as Step)).then((ns) => console.log(ns), (e) => console.error(e))
} else {
  const self = fileURLToPath(import.meta.url)
  console.log("| step | ns per call: min (median) of 5, a fresh process each | what it adds |\n|---|---:|---|")
  for (const step of Object.keys(steps) as Array<Step>) {
    const runs: Array<number> = []
    for (let r = 0; r < REPETITIONS; r++) {
      const out = spawnSync(process.execPath, ["--import", "tsx", self, step], { encoding: "utf8" })
      if (out.status !== 0) throw new Error(`${step}: ${out.stderr}`)
      runs.push(Number(out.stdout.trim()))
    }
    runs.sort((a, b) => a - b)
    console.log(`| ${step} | ${runs[0]!.toFixed(0)} (${runs[2]!.toFixed(0)}) | ${steps[step]} |`)
  }
}
