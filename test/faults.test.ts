/**
 * Fault injection in real time (issue #4, part 3). Children die at random points: in their
 * bodies, in their finalizers, while they are built, while the dispatcher stops. Callers are
 * interrupted while they wait. Keys are odd. Every run checks the promise: every accepted
 * request is answered exactly once, none is handed to a child twice, and no caller waits
 * forever.
 *
 * The runs are seeded (the same requests and faults each time); the interleaving is real.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, type Duration, Effect, Exit, Fiber, Option, Queue, Schedule } from "effect"
import { Dispatcher } from "effect-dispatcher"
import { gatedServe } from "./support/harness.js"
import { quiet } from "./support/logs.js"

// -----------------------------------------------------------------------------
// Seeded randomness
// -----------------------------------------------------------------------------

/** mulberry32: small, fast and good enough to pick faults */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
type Rng = () => number
const pick = <A>(rng: Rng, items: ReadonlyArray<A>): A => items[Math.floor(rng() * items.length)]!

// -----------------------------------------------------------------------------
// Requests with a fate, and the ledger that audits them
// -----------------------------------------------------------------------------

/** What the leaf child does with a request it takes. */
type Fate =
  | "answer" // succeed with `ok:<id>`
  | "answerTwice" // succeed, then try again: the second reply must return false
  | "fail" // the handler's own error
  | "slow" // answer after a few millis
  | "answerThenDie" // answer, then the child dies
  | "dieHolding" // the child dies holding the request
  | "failHolding" // the child fails holding the request
  | "endHolding" // the child ends cleanly holding the request
  | "interruptHolding" // the child interrupts itself holding the request

interface Job {
  readonly id: number
  /** the key at each level, root first */
  readonly path: ReadonlyArray<string>
  readonly fate: Fate
}

type Answer = Deferred.Deferred<string, string | Dispatcher.DispatchError>

const fateWeights: ReadonlyArray<readonly [Fate, number]> = [
  ["answer", 70],
  ["answerTwice", 5],
  ["fail", 5],
  ["slow", 5],
  ["answerThenDie", 3],
  ["dieHolding", 3],
  ["failHolding", 3],
  ["endHolding", 3],
  ["interruptHolding", 3]
]
const fateTotal = fateWeights.reduce((n, [, w]) => n + w, 0)
const pickFate = (rng: Rng): Fate => {
  let r = rng() * fateTotal
  for (const [fate, weight] of fateWeights) {
    if ((r -= weight) < 0) return fate
  }
  return "answer"
}

class Ledger {
  /** times a child was handed each request */
  readonly taken = new Map<number, number>()
  /** times a child's reply won (returned true) */
  readonly wins = new Map<number, number>()
  /** a second reply that returned true: an answer given twice */
  readonly doubleWins: Array<number> = []
  readonly accepted = new Map<number, Answer>()
  readonly refused = new Map<number, string>()
  /** callers interrupted in `send` (waiting for room): their requests must never reach a child */
  readonly interruptedInSend = new Set<number>()
  /** callers that used a bounded `call` (see `CallerPlan.withdrawRate`) */
  readonly viaCall = new Set<number>()
  /** requests handed to `serve`, which answers them itself (no reply to watch) */
  readonly served = new Set<number>()
  /** what each caller that waited to the end got */
  readonly outcomes = new Map<number, Exit.Exit<string, unknown>>()
  leavesLive = 0
  leavesSpawned = 0
  middlesLive = 0

  took(id: number): void {
    this.taken.set(id, (this.taken.get(id) ?? 0) + 1)
  }
  won(id: number, won: boolean): void {
    if (won) this.wins.set(id, (this.wins.get(id) ?? 0) + 1)
  }
}

const ok = (id: number) => `ok:${id}`

/**
 * A child that does with each request what its fate says, one at a time, and
 * sometimes has a finalizer that is slow or dies. It ends when its mailbox does.
 */
const chaosLeaf = (ledger: Ledger, rng: Rng, finalizerFaults: boolean) =>
(spec: Dispatcher.ChildSpec<Job, string, string>) =>
  Effect.gen(function*() {
    if (finalizerFaults) {
      const r = rng()
      if (r < 0.1) yield* Effect.addFinalizer(() => Effect.die(new Error(`finalizer of ${spec.key} died`)))
      else if (r < 0.2) yield* Effect.addFinalizer(() => Effect.sleep(1))
    }
    for (;;) {
      const next = yield* Effect.exit(Queue.take(spec.requests))
      if (next._tag === "Failure") return // the mailbox ended
      const envelope = next.value
      const { fate, id } = envelope.request
      ledger.took(id)
      switch (fate) {
        case "answer":
          ledger.won(id, yield* envelope.succeed(ok(id)))
          break
        case "answerTwice": {
          ledger.won(id, yield* envelope.succeed(ok(id)))
          if (yield* envelope.succeed("again")) ledger.doubleWins.push(id)
          break
        }
        case "fail":
          ledger.won(id, yield* envelope.fail(`failed:${id}`))
          break
        case "slow":
          yield* Effect.sleep(1 + Math.floor(rng() * 3))
          ledger.won(id, yield* envelope.succeed(ok(id)))
          break
        case "answerThenDie":
          ledger.won(id, yield* envelope.succeed(ok(id)))
          return yield* Effect.die(new Error(`died after ${id}`))
        case "dieHolding":
          return yield* Effect.die(new Error(`died holding ${id}`))
        case "failHolding":
          return yield* Effect.fail(`failed holding ${id}`)
        case "endHolding":
          return
        case "interruptHolding":
          return yield* Effect.interrupt
      }
    }
  })

/** `serve` with a handler that acts out the fate a handler can have. */
const servedLeaf = (ledger: Ledger, rng: Rng, idleTimeToLive: Duration.Input) =>
(spec: Dispatcher.ChildSpec<Job, string, string>) =>
  Dispatcher.serve(spec, (job) => {
    ledger.took(job.id)
    ledger.served.add(job.id)
    switch (job.fate) {
      case "fail":
      case "failHolding":
        return Effect.fail(`failed:${job.id}`)
      case "dieHolding":
        return Effect.die(new Error(`handler died on ${job.id}`))
      case "endHolding":
      case "interruptHolding":
        return Effect.interrupt
      case "slow":
        return Effect.as(Effect.sleep(1 + Math.floor(rng() * 3)), ok(job.id))
      default:
        return Effect.succeed(ok(job.id))
    }
  }, { idleTimeToLive })

/** Count live leaves, and sometimes throw while building the child's effect. */
const leafSpawn = (
  ledger: Ledger,
  rng: Rng,
  throwRate: number,
  body: (spec: Dispatcher.ChildSpec<Job, string, string>) => Effect.Effect<unknown, unknown, any>
) =>
(spec: Dispatcher.ChildSpec<Job, string, string>) => {
  if (rng() < throwRate) throw new Error(`cannot build the child for ${spec.key}`)
  return Effect.suspend(() => {
    ledger.leavesLive++
    ledger.leavesSpawned++
    return Effect.ensuring(body(spec), Effect.sync(() => ledger.leavesLive--))
  })
}

/** Jobs on random paths, a key per level drawn root first (then the fate), so a seed keeps its history. */
const jobsOn = (
  rng: Rng,
  count: number,
  levels: ReadonlyArray<ReadonlyArray<string>>,
  fate: (rng: Rng) => Fate
): Array<Job> =>
  Array.from({ length: count }, (_, id): Job => ({ id, path: levels.map((keys) => pick(rng, keys)), fate: fate(rng) }))

/** Children keyed by the job's key at `level`, dying at random (see `chaosLeaf`), counted in the ledger. */
const chaosFactory = (
  level: 0 | 1,
  ledger: Ledger,
  rng: Rng,
  throwRate: number,
  finalizerFaults: boolean
): Dispatcher.Factory<Job, string, string> => ({
  keyOf: (job) => job.path[level]!,
  spawn: leafSpawn(ledger, rng, throwRate, chaosLeaf(ledger, rng, finalizerFaults))
})

/** A root child that runs a downstream dispatcher over `leaves`, counted live in the ledger. */
const countedMiddle = (
  ledger: Ledger,
  leaves: Dispatcher.Factory<Job, string, string>,
  options: Dispatcher.Options,
  around: (downstream: Effect.Effect<void, Dispatcher.InvalidOptions>) => Effect.Effect<unknown, unknown> = (downstream) =>
    downstream
) =>
(spec: Dispatcher.ChildSpec<Job, string, string>) =>
  Effect.suspend(() => {
    ledger.middlesLive++
    return around(Dispatcher.runChild(spec, leaves, options)).pipe(
      Effect.ensuring(Effect.sync(() => ledger.middlesLive--))
    )
  })

/**
 * One key "k" whose child takes one request, says so (`taken`), waits for
 * `release`, then echoes it and records whether its reply was the answer.
 */
const holdingOne = Effect.gen(function*() {
  const release = yield* Deferred.make<void>()
  const taken = yield* Deferred.make<void>()
  const replies: Array<boolean> = []
  const d = yield* Dispatcher.make<number, number>({
    keyOf: () => "k",
    spawn: (spec) =>
      Effect.gen(function*() {
        const envelope = yield* Queue.take(spec.requests)
        yield* Deferred.succeed(taken, undefined)
        yield* Deferred.await(release)
        replies.push(yield* envelope.succeed(envelope.request))
      })
  })
  return { d, release, replies, taken }
})

// -----------------------------------------------------------------------------
// Callers
// -----------------------------------------------------------------------------

interface CallerPlan {
  /** callers that give up waiting for the answer after a millisecond or two */
  readonly giveUpRate?: number
  /** callers whose `send` is bounded by a millisecond or two (it may be waiting for room) */
  readonly sendDeadlineRate?: number
  /** callers that use `call` bounded by a millisecond or two: interrupted, they withdraw their request */
  readonly withdrawRate?: number
}

/**
 * Send, then wait for the answer. What the caller learns goes to the ledger in
 * an uninterruptible step, so an interrupted caller leaves no doubt behind.
 */
const caller = (
  dispatcher: Dispatcher.Dispatcher<Job, string, string>,
  ledger: Ledger,
  job: Job,
  rng: Rng,
  plan: CallerPlan
) => {
  const giveUp = rng() < (plan.giveUpRate ?? 0)
  const boundSend = rng() < (plan.sendDeadlineRate ?? 0)
  const limit = 1 + Math.floor(rng() * 2)
  if (rng() < (plan.withdrawRate ?? 0)) {
    // no Deferred to audit: `call` hides it. What is checked is that the request reaches a child at most once.
    ledger.viaCall.add(job.id)
    return Effect.asVoid(Effect.exit(Effect.timeoutOption(Dispatcher.call(dispatcher, job), limit)))
  }
  const send = Dispatcher.send(dispatcher, job).pipe(
    Effect.onExit((exit) =>
      Effect.sync(() => {
        if (exit._tag === "Success") ledger.accepted.set(job.id, exit.value)
        else if (Cause.hasInterruptsOnly(exit.cause)) ledger.interruptedInSend.add(job.id)
        else {
          const reason = exit.cause.reasons[0]
          ledger.refused.set(job.id, reason?._tag === "Fail" ? (reason.error as { _tag: string })._tag : "defect")
        }
      })
    )
  )
  return Effect.gen(function*() {
    yield* Effect.exit(boundSend ? Effect.asVoid(Effect.timeoutOption(send, limit)) : Effect.asVoid(send))
    const answer = ledger.accepted.get(job.id)
    if (answer === undefined) return
    if (giveUp) {
      yield* Effect.exit(Effect.timeoutOption(Deferred.await(answer), limit))
      return
    }
    ledger.outcomes.set(job.id, yield* Effect.exit(Deferred.await(answer)))
  })
}

// -----------------------------------------------------------------------------
// The audit
// -----------------------------------------------------------------------------

/**
 * After the stop: nobody waits, every accepted request is answered, none was
 * handed to a child twice or answered twice, refused ones never reached a child,
 * and each caller got the answer its child gave.
 */
const audit = (ledger: Ledger, jobs: ReadonlyArray<Job>) =>
  Effect.gen(function*() {
    const unanswered: Array<number> = []
    for (const [id, answer] of ledger.accepted) {
      if (!(yield* Deferred.isDone(answer))) unanswered.push(id)
    }
    assert.deepStrictEqual(unanswered, [], "accepted requests never answered (lost)")
    const twice = [...ledger.taken].filter(([, n]) => n > 1).map(([id]) => id)
    assert.deepStrictEqual(twice, [], "requests handed to a child twice")
    assert.deepStrictEqual(ledger.doubleWins, [], "requests answered twice")
    assert.deepStrictEqual([...ledger.wins].filter(([, n]) => n > 1), [], "replies that won twice")
    const strays = jobs.filter((j) => !ledger.accepted.has(j.id) && !ledger.viaCall.has(j.id) && ledger.taken.has(j.id))
      .map((j) => j.id)
    assert.deepStrictEqual(strays, [], "requests a child took though the caller was not told they were accepted")
    for (const [id, exit] of ledger.outcomes) {
      if (exit._tag === "Success") {
        assert.strictEqual(exit.value, ok(id), `request ${id} got another request's answer`)
        if (!ledger.served.has(id)) assert.strictEqual(ledger.wins.get(id) ?? 0, 1, `request ${id}: no winning reply`)
      }
    }
    assert.strictEqual(ledger.leavesLive, 0, "leaves still alive after the stop")
    assert.strictEqual(ledger.middlesLive, 0, "downstream dispatchers still running after the stop")
  })

/** How the callers' answers were spread (for the test's own sanity checks). */
const tally = (ledger: Ledger) => {
  const counts: Record<string, number> = {}
  for (const exit of ledger.outcomes.values()) {
    let tag = "ok"
    if (exit._tag === "Failure") {
      const reason = exit.cause.reasons[0]
      tag = reason?._tag === "Fail"
        ? typeof reason.error === "string" ? "handlerError" : (reason.error as { _tag: string })._tag
        : reason?._tag === "Die"
        ? "defect"
        : "interrupt"
    }
    counts[tag] = (counts[tag] ?? 0) + 1
  }
  return counts
}


/**
 * `concurrency` callers, each taking the next job until none is left. (Not
 * `Effect.forEach` with `concurrency`: in effect 4.1.0 it can run an item twice
 * and skip another when a worker it forks completes another worker at once,
 * which a dispatcher's synchronous hand-offs make likely. See the report.)
 */
const runCallers = (
  dispatcher: Dispatcher.Dispatcher<Job, string, string>,
  ledger: Ledger,
  jobs: ReadonlyArray<Job>,
  rng: Rng,
  plan: CallerPlan,
  concurrency: number
) =>
  Effect.suspend(() => {
    let next = 0
    const worker = Effect.whileLoop({
      while: () => next < jobs.length,
      body: () => Effect.suspend(() => caller(dispatcher, ledger, jobs[next++]!, rng, plan)),
      step: () => {}
    })
    return Effect.gen(function*() {
      const workers: Array<Fiber.Fiber<void>> = []
      for (let i = 0; i < concurrency; i++) workers.push(yield* Effect.forkChild(worker))
      yield* Fiber.joinAll(workers)
    })
  })

const fastRestart = Schedule.spaced("1 millis").pipe(Schedule.upTo({ times: 4 }))

// -----------------------------------------------------------------------------
// The tests
// -----------------------------------------------------------------------------

describe("faults in real time", () => {
  it.live("children die at random points (bodies, finalizers, as they are built): each accepted request is answered once", () =>
    Effect.gen(function*() {
      const rng = prng(1)
      const ledger = new Ledger()
      const keys = Array.from({ length: 12 }, (_, i) => `k${i}`)
      const jobs = jobsOn(rng, 3000, [keys], pickFate)
      const d = yield* Dispatcher.make(chaosFactory(0, ledger, rng, 0.05, true), {
        mailboxCapacity: 32,
        restart: fastRestart
      })
      yield* runCallers(d, ledger, jobs, rng, {}, 200)
      const before = yield* Dispatcher.stats(d)
      yield* Dispatcher.shutdown(d)
      yield* audit(ledger, jobs)
      const counts = tally(ledger)
      // every caller waited to the end, so every accepted request has an outcome
      assert.strictEqual(ledger.outcomes.size, ledger.accepted.size)
      assert.strictEqual(before.accepted, ledger.accepted.size)
      assert.isAbove(counts.ok ?? 0, 1000)
      assert.isAbove(counts.ChildFailed ?? 0, 0, "children that die holding a request answer it ChildFailed")
      assert.isAbove(counts.Unavailable ?? 0, 0, "children that end holding a request answer it Unavailable")
      assert.isAbove(before.failures, 0)
      assert.deepStrictEqual(yield* Dispatcher.children(d), [])
      assert.strictEqual((yield* Dispatcher.stats(d)).live, 0)
    }).pipe(Effect.scoped, quiet))

  it.live("a two-level hierarchy with deadlines, idle expiry, a cap on children and waiting for room", () =>
    Effect.gen(function*() {
      const rng = prng(2)
      const ledger = new Ledger()
      const groups = ["g0", "g1", "g2", "g3", "g4", "g5"]
      const topics = ["t0", "t1", "t2", "t3", "t4"]
      const jobs = jobsOn(rng, 3000, [groups, topics], pickFate)
      const leaves: Dispatcher.Factory<Job, string, string> = {
        keyOf: (job) => job.path[1]!,
        spawn: (spec) =>
          leafSpawn(
            ledger,
            rng,
            0.02,
            spec.key < "t2" ? chaosLeaf(ledger, rng, true) : servedLeaf(ledger, rng, "3 millis")
          )(spec)
      }
      const d = yield* Dispatcher.make<Job, string, string>({
        keyOf: (job) => job.path[0]!,
        spawn: countedMiddle(ledger, leaves, {
          name: "topics",
          mailboxCapacity: 16,
          maxChildren: 3,
          requestTimeout: "40 millis",
          restart: fastRestart
        })
      }, {
        name: "groups",
        mailboxCapacity: 16,
        maxChildren: 4,
        overflow: { wait: "2 millis" },
        requestTimeout: "80 millis",
        restart: fastRestart
      })
      yield* runCallers(d, ledger, jobs, rng, {}, 100)
      yield* Dispatcher.shutdown(d)
      yield* audit(ledger, jobs)
      assert.strictEqual(ledger.outcomes.size, ledger.accepted.size)
      // how the answers spread depends on timing; that most were served does not
      const counts = tally(ledger)
      assert.isAbove(counts.ok ?? 0, 300, JSON.stringify(counts))
    }).pipe(Effect.scoped, quiet))

  it.live("children die and finalizers fail while the dispatcher is stopping: the stop completes, nothing is lost", () =>
    Effect.gen(function*() {
      const rng = prng(3)
      const ledger = new Ledger()
      const jobs = jobsOn(rng, 2000, [["a", "b", "c"], ["x", "y", "z", "w"]], pickFate)
      const leaves = chaosFactory(1, ledger, rng, 0.02, true)
      const d = yield* Dispatcher.make<Job, string, string>({
        keyOf: (job) => job.path[0]!,
        spawn: countedMiddle(ledger, leaves, { mailboxCapacity: 64, restart: fastRestart })
      }, { mailboxCapacity: 256, restart: fastRestart })
      // callers keep coming while the stop runs: the late ones are refused Unavailable
      const callers = yield* Effect.forkChild(runCallers(d, ledger, jobs, rng, {}, 400))
      yield* Effect.sleep(5)
      const stopping = yield* Effect.forkChild(Dispatcher.shutdown(d))
      yield* Fiber.join(callers).pipe(Effect.timeout("5 seconds"))
      yield* Fiber.join(stopping).pipe(Effect.timeout("5 seconds"))
      yield* audit(ledger, jobs)
      assert.strictEqual(ledger.outcomes.size, ledger.accepted.size)
      assert.isAbove([...ledger.refused.values()].filter((tag) => tag === "Unavailable").length, 0)
      // a send after the stop is refused too
      const late = yield* Effect.flip(Dispatcher.send(d, { id: -1, path: ["a", "x"], fate: "answer" }))
      assert.deepStrictEqual([late._tag, late.key], ["Unavailable", "a"])
    }).pipe(Effect.scoped, quiet))

  it.live("a child that dies after the stop began: no successor, what it held is ChildFailed, the rest Unavailable", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      let builds = 0
      let finalized = 0
      const d = yield* Dispatcher.make<number, number>({
        keyOf: () => "k",
        spawn: (spec) =>
          Effect.gen(function*() {
            builds++
            yield* Effect.addFinalizer(() => Effect.andThen(Effect.sync(() => finalized++), Effect.die("finalizer died")))
            yield* Deferred.await(gate)
            const envelope = yield* Queue.take(spec.requests)
            return yield* Effect.die(new Error(`died holding ${envelope.request}`))
          })
      })
      const answers = yield* Effect.forEach([1, 2, 3], (n) => Dispatcher.send(d, n))
      const stopping = yield* Effect.forkChild(Dispatcher.shutdown(d), { startImmediately: true })
      assert.strictEqual((yield* Effect.flip(Dispatcher.send(d, 4)))._tag, "Unavailable")
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(stopping).pipe(Effect.timeout("2 seconds"))
      const tags = yield* Effect.forEach(answers, (a) => Effect.map(Effect.flip(Deferred.await(a)), (e) => e._tag))
      assert.deepStrictEqual(tags, ["ChildFailed", "Unavailable", "Unavailable"])
      assert.deepStrictEqual([builds, finalized], [1, 1])
      const stats = yield* Dispatcher.stats(d)
      assert.deepStrictEqual([stats.live, stats.failures, stats.successors], [0, 1, 0])
    }).pipe(Effect.scoped, quiet))

  it.live("a shutdown that is interrupted still stops the dispatcher; awaitStop then returns", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const d = yield* Dispatcher.make(gatedServe(gate, (n: number) => String(n), Effect.succeed))
      const answer = yield* Dispatcher.send(d, 1)
      assert.isTrue(Option.isNone(yield* Effect.timeoutOption(Dispatcher.shutdown(d), 5)), "held up by the child")
      assert.strictEqual((yield* Effect.flip(Dispatcher.send(d, 2)))._tag, "Unavailable", "but stopping")
      yield* Deferred.succeed(gate, undefined)
      yield* Dispatcher.awaitStop(d).pipe(Effect.timeout("2 seconds"))
      assert.strictEqual(yield* Deferred.await(answer), 1, "the child drained its mailbox")
    }).pipe(Effect.scoped))

  it.live("downstream dispatchers cut short (interrupted) mid-flight: their successors serve the rest", () =>
    Effect.gen(function*() {
      const rng = prng(5)
      const ledger = new Ledger()
      const jobs = jobsOn(rng, 2000, [["a", "b", "c"], ["x", "y", "z"]], () => "answer")
      let cut = 0
      const leaves = chaosFactory(1, ledger, rng, 0, false)
      const d = yield* Dispatcher.make<Job, string, string>({
        keyOf: (job) => job.path[0]!,
        spawn: countedMiddle(ledger, leaves, { mailboxCapacity: 64 }, (downstream) =>
          downstream.pipe(
            // each downstream dispatcher lives a few millis, then is interrupted
            Effect.timeoutOption(1 + Math.floor(rng() * 4)),
            Effect.tap((o) => Effect.sync(() => Option.isNone(o) && cut++))
          ))
      }, { mailboxCapacity: 512 })
      yield* runCallers(d, ledger, jobs, rng, {}, 200)
      yield* Dispatcher.shutdown(d)
      yield* audit(ledger, jobs)
      assert.strictEqual(ledger.outcomes.size, ledger.accepted.size)
      assert.isAbove(cut, 0, "some downstream dispatchers were cut short")
      const counts = tally(ledger)
      // a cut-short level answers what it holds Unavailable; the parent's successor serves the rest
      assert.isAbove(counts.ok ?? 0, 500, JSON.stringify(counts))
      assert.isAbove((yield* Dispatcher.stats(d)).successors, 0)
    }).pipe(Effect.scoped, quiet))

  it.live("callers interrupted while waiting (for room or for the answer): no leak, each request answered or skipped, never handed twice", () =>
    Effect.gen(function*() {
      const rng = prng(4)
      const ledger = new Ledger()
      const keys = ["p", "q", "r", "s"]
      const jobs = jobsOn(rng, 3000, [keys], pickFate)
      const d = yield* Dispatcher.make(chaosFactory(0, ledger, rng, 0, false), {
        mailboxCapacity: 4,
        overflow: { wait: "20 millis" },
        restart: fastRestart
      })
      yield* runCallers(d, ledger, jobs, rng, { giveUpRate: 0.3, sendDeadlineRate: 0.3, withdrawRate: 0.2 }, 100)
      // whoever gave up, the dispatcher still answers what it accepted: no stop needed for that
      yield* Effect.sleep(50)
      const unanswered: Array<number> = []
      for (const [id, answer] of ledger.accepted) {
        if (!(yield* Deferred.isDone(answer))) unanswered.push(id)
      }
      assert.deepStrictEqual(unanswered, [], "accepted requests still unanswered with the dispatcher running")
      assert.isAbove(ledger.interruptedInSend.size, 0, "some callers were interrupted while waiting for room")
      const stats = yield* Dispatcher.stats(d)
      // accepted: every send that returned a Deferred, and some of the bounded calls
      assert.isAtLeast(stats.accepted, ledger.accepted.size, "an interrupted wait for room is not counted as accepted")
      assert.isAtMost(stats.accepted, ledger.accepted.size + ledger.viaCall.size)
      assert.isAbove(stats.withdrawn, 0, "some calls were withdrawn")
      assert.isAtMost(stats.withdrawn, ledger.viaCall.size)
      yield* Dispatcher.shutdown(d)
      yield* audit(ledger, jobs)
      for (const id of ledger.interruptedInSend) assert.isFalse(ledger.taken.has(id), `request ${id} reached a child`)
    }).pipe(Effect.scoped, quiet))

  it.live("a caller interrupted while waiting for room is skipped: its request never reaches the child", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const seen: Array<number> = []
      const d = yield* Dispatcher.make(gatedServe(gate, () => "k", (n: number) => Effect.sync(() => (seen.push(n), n))), {
        mailboxCapacity: 1,
        overflow: { wait: "10 seconds" }
      })
      const first = yield* Dispatcher.send(d, 1)
      const waiting = yield* Effect.forkChild(Dispatcher.send(d, 2), { startImmediately: true })
      const third = yield* Effect.forkChild(Dispatcher.send(d, 3), { startImmediately: true })
      yield* Effect.sleep(5)
      yield* Fiber.interrupt(waiting)
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Deferred.await(first), 1)
      assert.strictEqual(yield* Deferred.await(yield* Fiber.join(third)), 3, "the next in line takes the place")
      assert.deepStrictEqual(seen, [1, 3])
      assert.strictEqual((yield* Dispatcher.stats(d)).accepted, 2)
    }).pipe(Effect.scoped))

  it.live("a call interrupted after its child took the request withdraws it: the child's reply is refused", () =>
    Effect.gen(function*() {
      const { d, release, replies, taken } = yield* holdingOne
      const calling = yield* Effect.forkChild(Dispatcher.call(d, 7), { startImmediately: true })
      yield* Deferred.await(taken)
      yield* Fiber.interrupt(calling)
      yield* Deferred.succeed(release, undefined)
      yield* Dispatcher.shutdown(d)
      assert.deepStrictEqual(replies, [false], "answered once: by the withdrawal")
      const stats = yield* Dispatcher.stats(d)
      assert.deepStrictEqual([stats.accepted, stats.withdrawn, stats.spawned, stats.live], [1, 1, 1, 0])
    }).pipe(Effect.scoped))

  it.live("a call interrupted before its request was taken withdraws it: serve skips it and serves the next", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const handled: Array<number> = []
      const d = yield* Dispatcher.make(gatedServe(gate, () => "k", (n: number) => Effect.sync(() => (handled.push(n), n))))
      const calling = yield* Effect.forkChild(Dispatcher.call(d, 1), { startImmediately: true })
      const next = yield* Dispatcher.send(d, 2)
      yield* Fiber.interrupt(calling)
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Deferred.await(next), 2)
      assert.deepStrictEqual(handled, [2], "the withdrawn request never reached the handler")
      assert.strictEqual((yield* Dispatcher.stats(d)).withdrawn, 1)
    }).pipe(Effect.scoped))

  it.live("a caller that sent, then stopped awaiting the Deferred, withdraws nothing: the request is still answered", () =>
    Effect.gen(function*() {
      const { d, release, replies } = yield* holdingOne
      const answer = yield* Dispatcher.send(d, 7)
      assert.isTrue(Option.isNone(yield* Effect.timeoutOption(Deferred.await(answer), 2)))
      yield* Deferred.succeed(release, undefined)
      yield* Dispatcher.shutdown(d)
      assert.deepStrictEqual(replies, [true])
      assert.strictEqual(yield* Deferred.await(answer), 7)
      assert.strictEqual((yield* Dispatcher.stats(d)).withdrawn, 0)
    }).pipe(Effect.scoped))

  it.live("spawn effects that throw while being built, at both levels, are children that died", () =>
    Effect.gen(function*() {
      const rng = prng(6)
      const ledger = new Ledger()
      const jobs = jobsOn(rng, 1000, [["a", "b"], ["x", "y", "z"]], () => "answer")
      let rootBuilds = 0
      const leaves = chaosFactory(1, ledger, rng, 0.3, false)
      const d = yield* Dispatcher.make<Job, string, string>({
        keyOf: (job) => job.path[0]!,
        spawn: (spec) => {
          // every other build of a root child throws
          if (++rootBuilds % 2 === 1) throw new Error(`cannot build ${spec.key}`)
          return countedMiddle(ledger, leaves, { restart: fastRestart })(spec)
        }
      }, { mailboxCapacity: 1000, restart: fastRestart })
      yield* runCallers(d, ledger, jobs, rng, {}, 100)
      yield* Dispatcher.shutdown(d)
      yield* audit(ledger, jobs)
      const counts = tally(ledger)
      assert.strictEqual(ledger.outcomes.size, ledger.accepted.size)
      // a failed build is paced and retried like a death; only a key that keeps failing gives up
      assert.isAbove(counts.ok ?? 0, 500, JSON.stringify(counts))
      assert.isAbove((yield* Dispatcher.stats(d)).failures, 0)
    }).pipe(Effect.scoped, quiet))

  it.live("with Schedule.recurs(0) a child that dies is not restarted: what waits for it gets ChildFailed at once", () =>
    Effect.gen(function*() {
      let builds = 0
      const gate = yield* Deferred.make<void>()
      const d = yield* Dispatcher.make<number, number>({
        keyOf: () => "k",
        spawn: (spec) =>
          Effect.gen(function*() {
            builds++
            yield* Deferred.await(gate)
            const envelope = yield* Queue.take(spec.requests)
            return yield* Effect.die(new Error(`died holding ${envelope.request}`))
          })
      }, { restart: Schedule.recurs(0) })
      const answers = yield* Effect.forEach([1, 2, 3], (n) => Dispatcher.send(d, n))
      yield* Deferred.succeed(gate, undefined)
      const errors = yield* Effect.forEach(answers, (a) => Effect.flip(Deferred.await(a)))
      assert.deepStrictEqual(errors.map((e) => [e._tag, (e as Dispatcher.DispatchError).key]), [
        ["ChildFailed", "k"],
        ["ChildFailed", "k"],
        ["ChildFailed", "k"]
      ])
      assert.strictEqual(builds, 1, "no successor")
      assert.deepStrictEqual(yield* Dispatcher.children(d), [], "the key is forgotten")
      // the next request starts afresh
      assert.strictEqual((yield* Effect.flip(Dispatcher.call(d, 4)))._tag, "ChildFailed")
      assert.strictEqual(builds, 2)
    }).pipe(Effect.scoped, quiet))

  // Left out, BUG "a dying finalizer skips restart pacing": a child whose finalizer dies is
  // respawned at once, for ever, instead of after the restart schedule's delays and giving up
  // with ChildFailed (DESIGN "restart"). Minimal failing case:
  //   make({ keyOf: () => "k", spawn: () => Effect.addFinalizer(() => Effect.die("f")).pipe(
  //     Effect.andThen(Effect.fail("boom"))) }, { restart: Schedule.recurs(2) })
  //   send(d, 1) -> never answered; stats().spawned grows by thousands a second.
  // Cause: incarnation runs `Scope.close(scope, exit)` then `afterChild`, so a failing
  // finalizer skips `afterChild` (the schedule step) and `restartDelay` stays 0.

  // Left out, BUG "a re-entrant place orphans a live child": `place` for a new key calls
  // `makeRoom`, which passivates the least recently used child by ending its mailbox; that wakes
  // the child inside the call (Router.wake), its downstream stop answers a leftover request
  // (finishStop -> reject -> Deferred.doneUnsafe), and that request's caller, resumed inside the
  // call too, sends a request for the same new key. The inner `place` registers an entry and
  // spawns its child; the outer one then overwrites it. The orphaned child is never told to stop,
  // so shutdown (and the Scope's close) never returns, and `resident` stays one too high.
  // Minimal failing case (maxChildren: 1, A's downstream holds a request behind a restart delay):
  //   root { maxChildren: 1 } over runChild({ keyOf: topic, spawn: topic "fail" fails at once },
  //     { restart: Schedule.spaced("1 second") })
  //   caller 1: call({ A, "fail" }) then, once answered, send({ B, "x" })
  //   caller 2: send({ B, "x" })  -> children(): ["B"], stats().live: 2; shutdown never returns.
  // `npm run soak -- --requests 100000 --seed 5` meets it on most runs.

  it.live("a serve handler that throws (or returns no Effect) instead of failing: that request is answered, the next served", () =>
    Effect.gen(function*() {
      const d = yield* Dispatcher.make<string, string>({
        keyOf: () => "k",
        spawn: (child) =>
          Dispatcher.serve(child, (s) => {
            if (s === "throw") throw new Error("the handler threw")
            if (s === "no effect") return "not an Effect" as unknown as Effect.Effect<string>
            return Effect.succeed(s)
          })
      })
      const answers = yield* Effect.forEach(["throw", "after", "no effect", "last"], (s) => Dispatcher.send(d, s))
      const exits = yield* Effect.forEach(answers, (a) => Effect.exit(Deferred.await(a)).pipe(Effect.timeout("2 seconds")))
      assert.isTrue(Exit.isFailure(exits[0]!) && /the handler threw/.test(String(exits[0])), String(exits[0]))
      assert.deepStrictEqual(exits[1], Exit.succeed("after"))
      assert.isTrue(Exit.isFailure(exits[2]!), String(exits[2]))
      assert.deepStrictEqual(exits[3], Exit.succeed("last"))
    }).pipe(Effect.scoped, quiet))
})

describe("odd keys", () => {
  const odd: ReadonlyArray<readonly [string, string]> = [
    ["the empty string", ""],
    ["a 10 KB string", "k".repeat(10 * 1024)],
    ["emoji and a ZWJ sequence", "👩‍👩‍👧‍👦🚀"],
    ["combining marks (NFD)", "e\u0301te\u0301"],
    ["the same in NFC (a different key)", "\u00e9t\u00e9"],
    ["right-to-left text", "مرحبا"],
    ["CJK", "消费者组"],
    ["a NUL and control characters", "a\u0000b\n\t"],
    ["a lone surrogate", "\ud800"],
    ["__proto__", "__proto__"],
    ["constructor", "constructor"],
    ["a path separator", "groups/g1"]
  ]

  it.live("each odd key gets its own child, at the root and downstream, and errors carry it unchanged", () =>
    Effect.gen(function*() {
      interface Req {
        readonly outer: string
        readonly inner: string
      }
      const built: Array<string> = []
      const d = yield* Dispatcher.make<Req, string>({
        keyOf: (r) => r.outer,
        spawn: (spec) =>
          Dispatcher.runChild(spec, {
            keyOf: (r: Req) => r.inner,
            spawn: (leaf) =>
              Effect.suspend(() => {
                built.push(leaf.key)
                return Dispatcher.serve(leaf, (r: Req, key) => Effect.succeed(`${r.outer}|${key}`))
              })
          }, { name: "inner" })
      }, { mailboxCapacity: 4 })
      for (const [, key] of odd) {
        assert.strictEqual(yield* Dispatcher.call(d, { outer: key, inner: key }), `${key}|${key}`)
      }
      // the same inner key under two outer keys: two children
      assert.strictEqual(yield* Dispatcher.call(d, { outer: "", inner: "\ud800" }), "|\ud800")
      assert.deepStrictEqual(built.slice(0, odd.length), odd.map(([, key]) => key))
      assert.strictEqual(built.length, odd.length + 1)
      yield* Dispatcher.shutdown(d)
      for (const [, key] of odd) {
        const refused = yield* Effect.flip(Dispatcher.send(d, { outer: key, inner: key }))
        assert.deepStrictEqual([refused._tag, refused.key], ["Unavailable", key])
      }
    }).pipe(Effect.scoped))

  it.live("odd keys are listed by children() exactly, and a full mailbox names them", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const d = yield* Dispatcher.make(gatedServe(gate, (s: string) => s, Effect.succeed), { mailboxCapacity: 1 })
      const answers = yield* Effect.forEach(odd, ([, key]) => Dispatcher.send(d, key))
      const listed = (yield* Dispatcher.children(d)).map((c) => c.key)
      assert.deepStrictEqual([...listed].sort(), odd.map(([, key]) => key).sort())
      for (const [, key] of odd) {
        const full = yield* Effect.flip(Dispatcher.send(d, key))
        assert.deepStrictEqual([full._tag, full.key, (full as Dispatcher.TooManyRequests).capacity], [
          "TooManyRequests",
          key,
          1
        ])
      }
      yield* Deferred.succeed(gate, undefined)
      const values = yield* Effect.forEach(answers, Deferred.await)
      assert.deepStrictEqual(values, odd.map(([, key]) => key))
    }).pipe(Effect.scoped))
})
