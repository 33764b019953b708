/**
 * The soak (issue #4, part 4): N requests over K keys through a two-level
 * hierarchy (groups -> topics -> leaves) with random faults and a final
 * shutdown, checking the promise: every accepted request is answered exactly
 * once, none is handed to a child twice, and no caller waits forever.
 *
 *   npm run soak                              # 1,000,000 requests over 10,000 keys
 *   npm run soak -- --requests 100000         # the CI run
 *   npm run soak -- --requests 200000 --keys 2500 --concurrency 500 --seed 7
 *
 * Faults, all seeded: leaves that fail, die, end early or interrupt themselves
 * holding a request, answer then die, answer twice, are slow or stall past the
 * deadline; slow leaf finalizers; leaf and group builds that throw; downstream
 * dispatchers cut short (interrupted) mid-flight; callers that give up waiting on
 * the Deferred (the request is still answered) or whose bounded `call` withdraws
 * it. In the mix: deadlines at both levels, idle expiry, caps on children at both
 * levels (LRU passivation) and waiting for room at the root.
 *
 * It prints the figures, then one summary line:
 *   soak: requests=N accepted=… answered=… rejected=… lost=0 duplicated=0 peakLive=… heapAfterMB=…
 * and exits 1 if anything was lost or duplicated, or the stop did not complete
 * within 30 s (then a line `soak: FAILED: ...` says so). Runs with --expose-gc
 * (the npm script passes it) to measure the heap.
 */
import { Deferred, Effect, Exit, Fiber, Logger, Option, Queue, Schedule, Scope } from "effect"
import { Dispatcher } from "effect-dispatcher"

// -----------------------------------------------------------------------------
// Arguments
// -----------------------------------------------------------------------------

const arg = (name: string, fallback: number): number => {
  const argv = process.argv
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}`) return Number(argv[i + 1])
    if (argv[i]!.startsWith(`--${name}=`)) return Number(argv[i]!.slice(name.length + 3))
  }
  return fallback
}

const requests = arg("requests", 1_000_000)
const keys = arg("keys", 10_000)
const concurrency = arg("concurrency", 1_000)
const seed = arg("seed", 42)
for (const [name, value] of [["requests", requests], ["keys", keys], ["concurrency", concurrency], ["seed", seed]] as const) {
  if (!Number.isSafeInteger(value) || value < (name === "seed" ? 0 : 1)) {
    console.error(`soak: --${name} must be a positive integer, got ${value}`)
    process.exit(2)
  }
}
const groups = Math.max(1, Math.round(Math.sqrt(keys)))
const topics = Math.max(1, Math.round(keys / groups))

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) {
  console.error("soak: run with --expose-gc (npm run soak does) to measure the heap")
  process.exit(2)
}

// -----------------------------------------------------------------------------
// Seeded randomness
// -----------------------------------------------------------------------------

/** mulberry32 */
const prng = (state: number) => () => {
  state = (state + 0x6d2b79f5) | 0
  let t = Math.imul(state ^ (state >>> 15), 1 | state)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** A request's own dice: the same for a given seed and id, whatever the interleaving. */
const dice = (id: number, salt: number) => prng((seed * 0x9e3779b1) ^ Math.imul(id + 1, 0x85ebca6b) ^ salt)()

/** Faults of children (builds, finalizers, cut-short dispatchers): seeded, in the order they happen. */
const chance = prng(seed ^ 0x5bd1e995)

// -----------------------------------------------------------------------------
// Requests and their fates
// -----------------------------------------------------------------------------

const Fate = {
  answer: 0,
  fail: 1, // the handler's own error
  slow: 2, // answered after 1-5 millis
  answerTwice: 3, // the second reply must return false
  answerThenDie: 4,
  dieHolding: 5,
  failHolding: 6,
  endHolding: 7, // the child ends cleanly holding it
  interruptHolding: 8,
  stall: 9 // takes 1.2 s: past the downstream deadline, and holding up its key
} as const
type Fate = (typeof Fate)[keyof typeof Fate]

/** percent of requests per fate; the rest are answered */
const fateTable: ReadonlyArray<readonly [Fate, number]> = [
  [Fate.fail, 1],
  [Fate.slow, 1],
  [Fate.answerTwice, 0.5],
  [Fate.answerThenDie, 0.5],
  [Fate.dieHolding, 0.5],
  [Fate.failHolding, 0.5],
  [Fate.endHolding, 0.5],
  [Fate.interruptHolding, 0.5],
  [Fate.stall, 0.02]
]

const fateOf = (id: number): Fate => {
  let r = dice(id, 1) * 100
  for (const [fate, percent] of fateTable) {
    if ((r -= percent) < 0) return fate
  }
  return Fate.answer
}

interface Job {
  readonly id: number
  readonly group: string
  readonly topic: string
  readonly fate: Fate
}

const groupNames = Array.from({ length: groups }, (_, i) => `g${i}`)
const topicNames = Array.from({ length: topics }, (_, i) => `t${i}`)

const jobOf = (id: number): Job => {
  // skewed: some groups are hot, some are rarely touched (and so get passivated)
  const g = Math.min(groups - 1, Math.floor(groups * dice(id, 2) ** 2))
  const t = Math.floor(topics * dice(id, 3))
  return { id, group: groupNames[g]!, topic: topicNames[t]!, fate: fateOf(id) }
}

// -----------------------------------------------------------------------------
// The ledger: one slot per request id
// -----------------------------------------------------------------------------

const Status = {
  unsent: 0,
  refused: 1,
  accepted: 2,
  answered: 3,
  /** a bounded `call` that returned: counted apart (its Deferred is hidden, so it may have been refused at send) */
  called: 4,
  /** a bounded `call` interrupted by its bound: its request is withdrawn */
  withdrawn: 5
} as const

const Outcome = {
  ok: 0,
  handlerError: 1,
  defect: 2,
  TooManyRequests: 3,
  Unavailable: 4,
  RequestTimeout: 5,
  ChildFailed: 6,
  /** only a handle whose requests cross processes answers it: never here */
  SchemaMismatch: 7,
  other: 8
} as const
const outcomeNames = Object.keys(Outcome) as Array<keyof typeof Outcome>

const status = new Uint8Array(requests)
const outcome = new Uint8Array(requests)
/** times the caller saw an answer (its await returned) */
const seen = new Uint8Array(requests)
/** times a child was handed the request */
const taken = new Uint8Array(requests)
/** times a child's reply won */
const wins = new Uint8Array(requests)
let doubleWins = 0
/** the answer a caller got was not its own request's */
let misanswered = 0
const refusedBy = { TooManyRequests: 0, Unavailable: 0, other: 0 }
/** callers that gave up waiting: checked after the stop */
const abandoned = new Map<number, Deferred.Deferred<string, string | Dispatcher.DispatchError>>()

const bump = (counts: Uint8Array, id: number) => {
  if (counts[id]! < 255) counts[id]!++
}

const classify = (exit: Exit.Exit<string, string | Dispatcher.DispatchError>, id: number): number => {
  if (exit._tag === "Success") {
    if (exit.value !== `ok:${id}`) misanswered++
    return Outcome.ok
  }
  const reason = exit.cause.reasons[0]
  if (reason?._tag === "Fail") {
    const error = reason.error
    if (typeof error === "string") return Outcome.handlerError
    return Outcome[error._tag] ?? Outcome.other
  }
  return reason?._tag === "Die" ? Outcome.defect : Outcome.other
}

const answered = (id: number, exit: Exit.Exit<string, string | Dispatcher.DispatchError>) => {
  bump(seen, id)
  status[id] = Status.answered
  outcome[id] = classify(exit, id)
}

// -----------------------------------------------------------------------------
// Children
// -----------------------------------------------------------------------------

let leavesLive = 0
let groupsLive = 0
let peakLive = 0
let leafBuilds = 0
let cutShort = 0
const live = () => {
  const n = leavesLive + groupsLive
  if (n > peakLive) peakLive = n
}

const slowMillis = (id: number) => 1 + Math.floor(dice(id, 4) * 5)
const stallMillis = 1_200

/** A custom leaf: takes one request at a time and does what its fate says. */
const chaosLeaf = (spec: Dispatcher.ChildSpec<Job, string, string>) =>
  Effect.gen(function*() {
    for (;;) {
      const next = yield* Effect.exit(Queue.take(spec.requests))
      if (next._tag === "Failure") return
      const envelope = next.value
      const { fate, id } = envelope.request
      bump(taken, id)
      switch (fate) {
        case Fate.answer:
          if (yield* envelope.succeed(`ok:${id}`)) bump(wins, id)
          break
        case Fate.fail:
          if (yield* envelope.fail(`failed:${id}`)) bump(wins, id)
          break
        case Fate.slow:
          yield* Effect.sleep(slowMillis(id))
          if (yield* envelope.succeed(`ok:${id}`)) bump(wins, id)
          break
        case Fate.answerTwice:
          if (yield* envelope.succeed(`ok:${id}`)) bump(wins, id)
          if (yield* envelope.succeed("again")) doubleWins++
          break
        case Fate.answerThenDie:
          if (yield* envelope.succeed(`ok:${id}`)) bump(wins, id)
          return yield* Effect.die(new Error(`died after ${id}`))
        case Fate.dieHolding:
          return yield* Effect.die(new Error(`died holding ${id}`))
        case Fate.failHolding:
          return yield* Effect.fail(`failed holding ${id}`)
        case Fate.endHolding:
          return
        case Fate.interruptHolding:
          return yield* Effect.interrupt
        case Fate.stall:
          yield* Effect.sleep(stallMillis)
          if (yield* envelope.succeed(`ok:${id}`)) bump(wins, id)
          break
      }
    }
  })

/** A `serve` leaf with an idle time to live: its handler acts out what a handler can. */
const servedLeaf = (spec: Dispatcher.ChildSpec<Job, string, string>) =>
  Dispatcher.serve(spec, (job) => {
    bump(taken, job.id)
    switch (job.fate) {
      case Fate.fail:
      case Fate.failHolding:
        return Effect.fail(`failed:${job.id}`)
      case Fate.dieHolding:
      case Fate.answerThenDie:
        return Effect.die(new Error(`handler died on ${job.id}`))
      case Fate.endHolding:
      case Fate.interruptHolding:
        return Effect.interrupt
      case Fate.slow:
        return Effect.as(Effect.sleep(slowMillis(job.id)), `ok:${job.id}`)
      case Fate.stall:
        return Effect.as(Effect.sleep(stallMillis), `ok:${job.id}`)
      default:
        return Effect.succeed(`ok:${job.id}`)
    }
  }, { idleTimeToLive: "200 millis" })

const leaves: Dispatcher.Factory<Job, string, string> = {
  keyOf: (job) => job.topic,
  spawn: (spec) => {
    leafBuilds++
    if (chance() < 0.002) throw new Error(`cannot build leaf ${spec.key}`)
    // Not a finalizer that dies: that skips restart pacing (see the report of issue #4)
    const slowFinalizer = chance() < 0.05
    const body = spec.key.charCodeAt(spec.key.length - 1) % 2 === 0 ? servedLeaf(spec) : chaosLeaf(spec)
    return Effect.suspend(() => {
      leavesLive++
      live()
      return body.pipe(
        slowFinalizer ? Effect.andThen(Effect.addFinalizer(() => Effect.sleep(1))) : (self) => self,
        Effect.ensuring(Effect.sync(() => leavesLive--))
      )
    })
  }
}

const fast = Schedule.exponential("1 millis").pipe(Schedule.upTo({ times: 5 }))

const topicsUnder: Dispatcher.Options = {
  name: "topics",
  mailboxCapacity: 32,
  maxChildren: Math.max(1, Math.floor(topics * 0.6)),
  requestTimeout: "1 second",
  restart: fast
}

const groupsFactory: Dispatcher.Factory<Job, string, string> = {
  keyOf: (job) => job.group,
  spawn: (spec) => {
    if (chance() < 0.002) throw new Error(`cannot build group ${spec.key}`)
    // now and then a downstream dispatcher is cut short (interrupted) mid-flight
    const cut = chance() < 0.01 ? 20 + Math.floor(chance() * 200) : undefined
    return Effect.suspend(() => {
      groupsLive++
      live()
      const run = Dispatcher.runChild(spec, leaves, topicsUnder)
      return (cut === undefined
        ? run
        : Effect.timeoutOption(run, cut).pipe(Effect.tap((o) => Effect.sync(() => Option.isNone(o) && cutShort++))))
        .pipe(Effect.ensuring(Effect.sync(() => groupsLive--)))
    })
  }
}

const groupsOptions: Dispatcher.Options = {
  name: "groups",
  mailboxCapacity: 256,
  maxChildren: Math.max(1, Math.floor(groups * 0.8)),
  overflow: { wait: "5 millis" },
  requestTimeout: "2 seconds",
  restart: fast
}

// -----------------------------------------------------------------------------
// Callers
// -----------------------------------------------------------------------------

const call = (d: Dispatcher.Dispatcher<Job, string, string>, id: number) =>
  Effect.suspend(() => {
    const job = jobOf(id)
    // one caller in two hundred uses `call` bounded by a few millis: interrupted, it withdraws its request
    if (dice(id, 7) < 0.005) {
      return Effect.map(Effect.timeoutOption(Effect.exit(Dispatcher.call(d, job)), 1 + Math.floor(dice(id, 6) * 10)), (o) => {
        status[id] = Option.isSome(o) ? Status.called : Status.withdrawn
      })
    }
    return Effect.flatMap(Effect.exit(Dispatcher.send(d, job)), (sent) => {
      if (sent._tag === "Failure") {
        status[id] = Status.refused
        const reason = sent.cause.reasons[0]
        const tag = reason?._tag === "Fail" ? reason.error._tag : "other"
        if (tag === "TooManyRequests" || tag === "Unavailable") refusedBy[tag]++
        else refusedBy.other++
        return Effect.void
      }
      status[id] = Status.accepted
      const answer = sent.value
      // one caller in a hundred gives up after a few millis
      if (dice(id, 5) < 0.01) {
        return Effect.map(Effect.timeoutOption(Effect.exit(Deferred.await(answer)), 1 + Math.floor(dice(id, 6) * 10)), (o) => {
          if (Option.isSome(o)) answered(id, o.value)
          else abandoned.set(id, answer)
        })
      }
      return Effect.map(Effect.exit(Deferred.await(answer)), (exit) => answered(id, exit))
    })
  })

// -----------------------------------------------------------------------------
// The run
// -----------------------------------------------------------------------------

const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10
const heap = () => process.memoryUsage().heapUsed
const seconds = (since: number) => ((performance.now() - since) / 1000).toFixed(1)

interface Run {
  readonly stats: Dispatcher.Stats
  readonly stuck: number
  readonly stopped: boolean
}

const soak = Effect.gen(function*() {
  // a Scope of our own, closed only if the stop completed: a stop that never completes must not hang the soak
  const scope = yield* Scope.make()
  const d = yield* Dispatcher.make(groupsFactory, groupsOptions).pipe(Scope.provide(scope))
  const started = performance.now()
  let next = 0
  const progressEvery = Math.max(1, Math.ceil(requests / 10))
  const worker = Effect.whileLoop({
    while: () => next < requests,
    body: () =>
      Effect.suspend(() => {
        const id = next++
        if (id > 0 && id % progressEvery === 0) {
          const s = Dispatcher.stats(d).pipe(Effect.runSync)
          console.log(
            `soak: ${id}/${requests} sent in ${seconds(started)} s; live=${leavesLive + groupsLive} (groups ${s.live}) heap=${
              mb(heap())
            } MB`
          )
        }
        return call(d, id)
      }),
    step: () => {}
  })
  const workers: Array<Fiber.Fiber<void>> = []
  for (let i = 0; i < concurrency; i++) workers.push(yield* Effect.forkDetach(worker))

  // the final shutdown: as soon as the last request is sent, with the last ones in flight
  yield* Effect.sleep(5).pipe(Effect.repeat({ until: () => next >= requests }))
  console.log(`soak: all ${requests} sent in ${seconds(started)} s; shutting down with requests in flight`)
  const stopped = yield* Effect.timeoutOption(Dispatcher.shutdown(d), "30 seconds")
  if (Option.isNone(stopped)) {
    const s = yield* Dispatcher.stats(d)
    const waiting = (yield* Dispatcher.children(d)).slice(0, 5)
    console.log(
      `soak: the stop has not completed after 30 s: live leaves ${leavesLive}, live groups ${groupsLive}, root ${
        JSON.stringify(s)
      }, first children ${JSON.stringify(waiting)}`
    )
  } else {
    console.log(`soak: stopped in ${seconds(started)} s`)
  }

  // nobody may wait for ever: give the callers a moment, then count who is still waiting
  const joined = yield* Effect.timeoutOption(Fiber.joinAll(workers), "10 seconds")
  let stuck = 0
  if (Option.isNone(joined)) {
    for (const fiber of workers) if (fiber.pollUnsafe() === undefined) stuck++
    yield* Effect.timeoutOption(Fiber.interruptAll(workers), "5 seconds")
  }
  for (const [id, answer] of abandoned) {
    const done = yield* Deferred.isDone(answer)
    if (done) answered(id, yield* Effect.exit(Deferred.await(answer)))
  }
  abandoned.clear()
  if (Option.isSome(stopped)) yield* Scope.close(scope, Exit.void)
  return { stats: yield* Dispatcher.stats(d), stuck, stopped: Option.isSome(stopped) } satisfies Run
})

const main = async () => {
  console.log(
    `soak: ${requests} requests over ${groups * topics} keys (${groups} groups x ${topics} topics), ${concurrency} callers, seed ${seed}`
  )
  let logged = 0
  const counting = Logger.make(() => {
    logged++
  })
  let peakHeap = 0
  gc()
  gc()
  const heapBefore = heap()
  const sampler = setInterval(() => {
    const h = heap()
    if (h > peakHeap) peakHeap = h
  }, 100)
  const started = performance.now()
  const run = await Effect.runPromise(soak.pipe(Effect.provide(Logger.layer([counting]))))
  const took = seconds(started)
  clearInterval(sampler)
  gc()
  gc()
  const heapAfter = heap()

  // the audit
  let accepted = 0
  let answeredCount = 0
  let lost = 0
  let duplicated = doubleWins
  let strays = 0
  let called = 0
  let withdrawn = 0
  const byOutcome = new Array<number>(outcomeNames.length).fill(0)
  for (let id = 0; id < requests; id++) {
    const s = status[id]!
    if (s === Status.accepted || s === Status.answered) accepted++
    if (s === Status.answered) {
      answeredCount++
      byOutcome[outcome[id]!]!++
    }
    if (s === Status.accepted) lost++
    if (s === Status.called) called++
    if (s === Status.withdrawn) withdrawn++
    if (seen[id]! > 1 || taken[id]! > 1 || wins[id]! > 1) duplicated++
    if (s === Status.refused && taken[id]! > 0) strays++
  }
  const rejected = refusedBy.TooManyRequests + refusedBy.Unavailable + refusedBy.other

  console.log(`soak: done in ${took} s (${Math.round(requests / Number(took))} requests/s)`)
  console.log(
    `  accepted ${accepted}, refused at send ${rejected} (TooManyRequests ${refusedBy.TooManyRequests}, Unavailable ${refusedBy.Unavailable}, other ${refusedBy.other})`
  )
  console.log(`  answered by outcome: ${outcomeNames.map((name, i) => `${name} ${byOutcome[i]}`).join(", ")}`)
  console.log(`  lost ${lost} (callers still waiting after the stop: ${run.stuck}), duplicated ${duplicated}`)
  console.log(
    `  bounded calls (counted apart): ${called + withdrawn}, of which ${withdrawn} interrupted by their bound (the root withdrew ${run.stats.withdrawn})`
  )
  if (strays > 0 || misanswered > 0) console.log(`  refused yet handed to a child ${strays}; answered with another's answer ${misanswered}`)
  console.log(
    `  root stats: ${JSON.stringify(run.stats)}; leaf builds ${leafBuilds}; downstream dispatchers cut short ${cutShort}; log lines ${logged}`
  )
  console.log(
    `  peak live children ${peakLive}; heap before ${mb(heapBefore)} MB, peak ${mb(peakHeap)} MB (sampled, garbage included), after shutdown and GC ${
      mb(heapAfter)
    } MB (${heapAfter >= heapBefore ? "+" : ""}${mb(heapAfter - heapBefore)} MB)`
  )
  const failures = [
    ...(lost > 0 ? [`${lost} accepted requests never answered`] : []),
    ...(duplicated > 0 ? [`${duplicated} requests handed to a child or answered twice`] : []),
    ...(strays > 0 ? [`${strays} refused requests reached a child`] : []),
    ...(misanswered > 0 ? [`${misanswered} callers got another request's answer`] : []),
    ...(run.stats.accepted < accepted || run.stats.accepted > accepted + called + withdrawn
      ? [`the root counted ${run.stats.accepted} accepted, the callers ${accepted} (and ${called + withdrawn} bounded calls)`]
      : []),
    ...(run.stats.withdrawn > withdrawn ? [`the root withdrew ${run.stats.withdrawn} requests, only ${withdrawn} calls were interrupted`] : []),
    ...(run.stopped ? [] : ["the stop did not complete within 30 s (shutdown never returned)"])
  ]
  if (failures.length > 0) console.log(`soak: FAILED: ${failures.join("; ")}`)
  console.log(
    `soak: requests=${requests} accepted=${accepted} answered=${answeredCount} rejected=${rejected} lost=${lost} duplicated=${duplicated} peakLive=${peakLive} heapAfterMB=${
      mb(heapAfter)
    }`
  )
  process.exit(failures.length > 0 ? 1 : 0)
}

main().catch((error) => {
  console.error("soak: failed", error)
  process.exit(1)
})
