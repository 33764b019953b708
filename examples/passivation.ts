/**
 * Passivation: 10,000 keys are touched once each, with a cap of 1,000 live
 * children and an idle time to live of 300 ms. The cap passivates the least
 * recently used idle child to make room for each new key (the new key's child
 * starts once the passivated one has ended, so live children never outnumber
 * the cap); the idle timer ends the last thousand. It prints the live children
 * over time and the final stats, and fails if live ever exceeded the cap.
 *
 * Run: npx tsx examples/passivation.ts
 */
import { Console, Effect, Fiber, Schedule } from "effect"
import { Dispatcher } from "effect-dispatcher"

const keys = 10_000
const cap = 1_000

const program = Effect.gen(function*() {
  const sessions = yield* Dispatcher.make<number, number>({
    keyOf: (id) => `session-${id}`,
    spawn: (child) => Dispatcher.serve(child, (id) => Effect.succeed(id * 2), { idleTimeToLive: "300 millis" })
  }, { name: "sessions", maxChildren: cap })

  const started = Date.now()
  let peak = 0
  const report = Effect.gen(function*() {
    const stats = yield* Dispatcher.stats(sessions)
    peak = Math.max(peak, stats.live)
    yield* Console.log(
      `t=${String(Date.now() - started).padStart(4)} ms  live=${String(stats.live).padStart(5)}  ` +
        `spawned=${String(stats.spawned).padStart(5)}  accepted=${String(stats.accepted).padStart(5)}`
    )
  })
  const reporter = yield* Effect.forkChild(Effect.repeat(report, Schedule.spaced("100 millis")))
  // sampled more often than it is printed
  const sampler = yield* Effect.forkChild(
    Effect.repeat(Effect.map(Dispatcher.stats(sessions), (s) => (peak = Math.max(peak, s.live))), Schedule.spaced("1 millis"))
  )

  // touch every key once, 500 at a time
  for (let from = 0; from < keys; from += 500) {
    yield* Effect.forEach(Array.from({ length: 500 }, (_, i) => from + i), (id) => Dispatcher.call(sessions, id), {
      concurrency: "unbounded",
      discard: true
    })
    yield* Effect.sleep("5 millis")
  }
  yield* Console.log(`all ${keys} keys touched`)
  // let the idle timer end the last ones
  yield* Effect.sleep("500 millis")
  yield* Fiber.interrupt(reporter)
  yield* Fiber.interrupt(sampler)
  yield* report
  const stats = yield* Dispatcher.stats(sessions)
  yield* Console.log("final stats:", JSON.stringify(stats))
  yield* Console.log(`most children live at once: ${peak} (cap ${cap})`)
  if (stats.accepted !== keys || stats.live !== 0 || peak > cap) {
    return yield* Effect.die(new Error("expected every key accepted, no child left, and never more than the cap live"))
  }
}).pipe(Effect.scoped)

Effect.runPromise(program).catch((error) => {
  console.error(error)
  process.exit(1)
})
