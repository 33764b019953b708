/**
 * `Dispatcher.hotKeys`: the top k keys of a tree by depth, age of the oldest
 * request, rate and failures, against a brute-force sort of the figures a
 * random tree must show (fast-check, on a TestClock); stuck keys found and
 * let go; the options checked.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, References, Schedule } from "effect"
import { TestClock } from "effect/testing"
import fc from "fast-check"
import { Dispatcher } from "../src/index.js"

const numRuns = Number(process.env.FC_RUNS ?? 60)

interface Rq {
  readonly group: string
  readonly topic: string
}

// -----------------------------------------------------------------------------
// Random trees
// -----------------------------------------------------------------------------

/** A key at the bottom of the tree: when its requests are sent, and how many of its children fail first. */
interface Leaf {
  readonly sends: ReadonlyArray<number>
  readonly failures: number
}

/** A group served at the root (`leaf`), or a dispatcher of topics below it (`topics`). */
type Group =
  | { readonly _tag: "leaf"; readonly leaf: Leaf }
  | { readonly _tag: "topics"; readonly topics: ReadonlyArray<Leaf> }

/** Sends at 0..899 ms: the first look at rates is at 400, the figures are read at 1,400. */
const leaf = fc.record({
  sends: fc.array(fc.integer({ min: 0, max: 899 }), { minLength: 1, maxLength: 6 }),
  failures: fc.integer({ min: 0, max: 2 })
})

const group: fc.Arbitrary<Group> = fc.oneof(
  leaf.map((leaf) => ({ _tag: "leaf" as const, leaf })),
  fc.array(leaf, { minLength: 1, maxLength: 4 }).map((topics) => ({ _tag: "topics" as const, topics }))
)

const scenario = fc.record({
  groups: fc.array(group, { minLength: 1, maxLength: 6 }),
  top: fc.integer({ min: 1, max: 8 }),
  stuckAfter: fc.integer({ min: 0, max: 1_400 })
})

type Scenario = typeof scenario extends fc.Arbitrary<infer A> ? A : never

const firstLook = 400
const readAt = 1_400
const measures = ["depth", "oldest", "rate", "failures"] as const

/** What the tree must show at 1,400 ms, key by key, at every level. */
const expected = (s: Scenario): Array<Dispatcher.KeyFigures> => {
  const out: Array<Dispatcher.KeyFigures> = []
  const stuck = (oldest: number) => oldest > s.stuckAfter
  const leafFigures = (key: string, path: string, l: Leaf): Dispatcher.KeyFigures => {
    const oldest = readAt - Math.min(...l.sends)
    return {
      key,
      path,
      depth: l.sends.length,
      oldest,
      rate: l.sends.filter((t) => t >= firstLook).length,
      failures: l.failures,
      restarts: l.failures,
      stuck: stuck(oldest)
    }
  }
  s.groups.forEach((g, i) => {
    if (g._tag === "leaf") return out.push(leafFigures(`g${i}`, "groups", g.leaf))
    // a group of topics: its router takes every request at once, so nothing waits at its level
    out.push({
      key: `g${i}`,
      path: "groups",
      depth: 0,
      oldest: 0,
      rate: g.topics.reduce((n, t) => n + t.sends.filter((at) => at >= firstLook).length, 0),
      failures: 0,
      restarts: 0,
      stuck: false
    })
    g.topics.forEach((t, j) => out.push(leafFigures(`t${j}`, `groups/g${i}/topics`, t)))
  })
  return out
}

const bruteForce = (all: ReadonlyArray<Dispatcher.KeyFigures>, top: number, by: Dispatcher.HotKeysMeasure) =>
  all.filter((k) => k[by] > 0).sort((a, b) =>
    a[by] !== b[by] ? b[by] - a[by] : a.path !== b.path ? (a.path < b.path ? -1 : 1) : a.key < b.key ? -1 : 1
  ).slice(0, top)

/**
 * Build the tree: leaves never take a request (everything they are sent waits
 * in their mailbox), and a leaf's first `failures` children fail as they
 * start (its successors are spawned 10 ms apart, on the same mailbox).
 */
const run = (s: Scenario) =>
  Effect.gen(function*() {
    yield* TestClock.adjust(0)
    const spawned = new Map<string, number>()
    const failuresOf = (path: string): number => {
      const [g, t] = path.split("/")
      const group = s.groups[Number(g!.slice(1))]!
      return group._tag === "leaf" ? group.leaf.failures : group.topics[Number(t!.slice(1))]!.failures
    }
    const leafSpawn = (id: string) => {
      const n = (spawned.get(id) ?? 0) + 1
      spawned.set(id, n)
      return n <= failuresOf(id) ? Effect.fail("boom") : Effect.never
    }
    const restart = Schedule.spaced("10 millis")
    const topics = (group: string): Dispatcher.Factory<Rq, string> => ({
      keyOf: (r) => r.topic,
      spawn: (child) => leafSpawn(`${group}/${child.key}`)
    })
    const d = yield* Dispatcher.make<Rq, string>({
      keyOf: (r) => r.group,
      spawn: (child) =>
        s.groups[Number(child.key.slice(1))]!._tag === "leaf"
          ? leafSpawn(child.key)
          : Dispatcher.runChild(child, topics(child.key), { name: "topics", mailboxCapacity: 100, restart })
      // leaves never end by themselves: the stop interrupts them
    }, { name: "groups", mailboxCapacity: 100, restart, shutdownTimeout: 0 })

    const sends = s.groups.flatMap((g, i) =>
      g._tag === "leaf"
        ? g.leaf.sends.map((at) => ({ at, rq: { group: `g${i}`, topic: "" } }))
        : g.topics.flatMap((t, j) => t.sends.map((at) => ({ at, rq: { group: `g${i}`, topic: `t${j}` } })))
    ).sort((a, b) => a.at - b.at)
    let now = 0
    const advanceTo = (t: number) =>
      Effect.suspend(() => {
        const step = t - now
        now = t
        return TestClock.adjust(step)
      })
    let looked = false
    for (const { at, rq } of sends) {
      if (!looked && at >= firstLook) {
        yield* advanceTo(firstLook)
        yield* Dispatcher.hotKeys(d, { top: 1, by: "depth" })
        looked = true
      }
      yield* advanceTo(at)
      yield* Dispatcher.send(d, rq)
    }
    if (!looked) {
      yield* advanceTo(firstLook)
      yield* Dispatcher.hotKeys(d, { top: 1, by: "depth" })
    }
    yield* advanceTo(readAt)

    const all = expected(s)
    for (const by of measures) {
      const got = yield* Dispatcher.hotKeys(d, { top: s.top, by, stuckAfter: `${s.stuckAfter} millis` })
      assert.deepStrictEqual(got, bruteForce(all, s.top, by), `by ${by}`)
    }
  }).pipe(
    Effect.scoped,
    Effect.provide(TestClock.layer({ warningDelay: "1 hour" })),
    Effect.provideService(References.MinimumLogLevel, "None")
  )

describe("hotKeys: the top k against a brute-force sort", () => {
  it.effect(`${numRuns} random trees: the top k by each measure is the brute-force top k`, () =>
    Effect.promise(() =>
      fc.assert(fc.asyncProperty(scenario, (s) => Effect.runPromise(run(s))), { numRuns })
    ), { timeout: Math.max(60_000, numRuns * 500) })

  it.effect("a tree of one level and one of two, by hand", () =>
    Effect.promise(() =>
      Effect.runPromise(run({
        groups: [
          { _tag: "leaf", leaf: { sends: [0, 500, 600], failures: 1 } },
          { _tag: "topics", topics: [{ sends: [100], failures: 0 }, { sends: [450, 460], failures: 2 }] }
        ],
        top: 3,
        stuckAfter: 1_000
      }))
    ))
})

// -----------------------------------------------------------------------------
// Stuck keys, on a TestClock
// -----------------------------------------------------------------------------

interface Job {
  readonly key: string
  readonly hang: boolean
}

describe("hotKeys: ages and stuck keys", () => {
  it.effect("a key behind a handler that never returns is stuck once its request passes the threshold, and goes once it is answered", () =>
    Effect.gen(function*() {
      const d = yield* Dispatcher.make<Job, string>({
        keyOf: (job) => job.key,
        spawn: Dispatcher.serveWith((job: Job) => (job.hang ? Effect.never : Effect.succeed("done")))
      }, { requestTimeout: "5 seconds", shutdownTimeout: 0 })
      const stuckList = Effect.map(
        Dispatcher.hotKeys(d, { top: 10, by: "oldest", stuckAfter: "1 second" }),
        (keys) => keys.filter((k) => k.stuck).map((k) => [k.key, k.oldest, k.depth])
      )
      const hung = yield* Dispatcher.send(d, { key: "hung", hang: true })
      assert.strictEqual(yield* Dispatcher.call(d, { key: "fine", hang: false }), "done")
      yield* TestClock.adjust("1 second")
      // exactly at the threshold: not older than it
      assert.deepStrictEqual(yield* stuckList, [])
      const [first] = yield* Dispatcher.hotKeys(d, { top: 10, by: "oldest" })
      assert.deepStrictEqual(first, {
        key: "hung",
        path: "dispatcher",
        depth: 0,
        oldest: 1_000,
        rate: 0,
        failures: 0,
        restarts: 0,
        // without stuckAfter: the requestTimeout, 5 s
        stuck: false
      })
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(yield* stuckList, [["hung", 1_001, 0]])
      // a request behind it waits in the mailbox
      yield* Dispatcher.send(d, { key: "hung", hang: false })
      yield* TestClock.adjust("2 seconds")
      assert.deepStrictEqual(yield* stuckList, [["hung", 3_001, 1]])
      // the deadline answers the hung request and interrupts its handler; the one behind it is served
      yield* TestClock.adjust("2 seconds")
      const answer = yield* Deferred.await(hung).pipe(Effect.flip)
      assert.strictEqual(answer._tag, "RequestTimeout")
      assert.deepStrictEqual(yield* stuckList, [])
      assert.deepStrictEqual(yield* Dispatcher.hotKeys(d, { top: 10, by: "oldest" }), [])
    }).pipe(Effect.scoped))

  it.effect("with no stuckAfter, a key is stuck once a request has waited longer than its requestTimeout: its child never took it", () =>
    Effect.gen(function*() {
      // a child that never takes a request: its mailbox's head is answered RequestTimeout and stays there
      const d = yield* Dispatcher.make<Job, string>({ keyOf: (job) => job.key, spawn: () => Effect.never }, {
        requestTimeout: "1 second",
        shutdownTimeout: 0
      })
      const answer = yield* Dispatcher.send(d, { key: "idle-child", hang: false })
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* Effect.flip(Deferred.await(answer)))._tag, "RequestTimeout")
      const [before] = yield* Dispatcher.hotKeys(d, { top: 1, by: "oldest" })
      assert.deepStrictEqual([before?.oldest, before?.stuck], [1_000, false])
      yield* TestClock.adjust("1 millis")
      const [after] = yield* Dispatcher.hotKeys(d, { top: 1, by: "oldest" })
      assert.deepStrictEqual([after?.key, after?.depth, after?.oldest, after?.stuck], ["idle-child", 1, 1_001, true])
    }).pipe(Effect.scoped))

  it.effect("without a requestTimeout or stuckAfter, no key is stuck however old", () =>
    Effect.gen(function*() {
      const d = yield* Dispatcher.make<Job, string>({ keyOf: (job) => job.key, spawn: () => Effect.never }, {
        shutdownTimeout: 0
      })
      yield* Dispatcher.send(d, { key: "k", hang: false })
      yield* TestClock.adjust("1 day")
      const [k] = yield* Dispatcher.hotKeys(d, { top: 1, by: "oldest" })
      assert.deepStrictEqual([k?.oldest, k?.stuck], [86_400_000, false])
    }).pipe(Effect.scoped))

  it.effect("a downstream level's default threshold is the shortest requestTimeout of it and the levels above", () =>
    Effect.gen(function*() {
      const d = yield* Dispatcher.make<Rq, string>({
        keyOf: (r) => r.group,
        spawn: (child) =>
          Dispatcher.runChild(child, { keyOf: (r: Rq) => r.topic, spawn: () => Effect.never }, {
            name: "topics",
            requestTimeout: "10 seconds"
          })
      }, { name: "groups", requestTimeout: "2 seconds", shutdownTimeout: 0 })
      yield* Dispatcher.send(d, { group: "g", topic: "t" })
      yield* TestClock.adjust("2001 millis")
      const [t] = yield* Dispatcher.hotKeys(d, { top: 5, by: "oldest" })
      assert.deepStrictEqual([t?.path, t?.key, t?.stuck], ["groups/g/topics", "t", true])
    }).pipe(Effect.scoped))
})

// -----------------------------------------------------------------------------
// Rates, options, other handles
// -----------------------------------------------------------------------------

describe("hotKeys: rates, options and handles", () => {
  it.effect("by rate, the first call looks, waits one window and looks again", () =>
    Effect.gen(function*() {
      const d = yield* Dispatcher.make<Job, string>({ keyOf: (job) => job.key, spawn: () => Effect.never }, {
        mailboxCapacity: 1_000,
        shutdownTimeout: 0
      })
      yield* Dispatcher.send(d, { key: "early", hang: false })
      const ranked = yield* Effect.forkChild(Dispatcher.hotKeys(d, { top: 5, by: "rate", window: "2 seconds" }))
      yield* TestClock.adjust("1 second")
      for (let i = 0; i < 10; i++) yield* Dispatcher.send(d, { key: "hot", hang: false })
      yield* Dispatcher.send(d, { key: "warm", hang: false })
      assert.isUndefined(ranked.pollUnsafe())
      yield* TestClock.adjust("1 second")
      const rates = (yield* Fiber.join(ranked)).map((k) => [k.key, k.rate])
      // per second over the 2-second window; "early" was sent before the first look
      assert.deepStrictEqual(rates, [["hot", 5], ["warm", 0.5]])
      // a second call measures at once, from the last look a window old
      for (let i = 0; i < 4; i++) yield* Dispatcher.send(d, { key: "warm", hang: false })
      yield* TestClock.adjust("2 seconds")
      const again = yield* Dispatcher.hotKeys(d, { top: 5, by: "rate", window: "2 seconds" })
      assert.deepStrictEqual(again.map((k) => [k.key, k.rate]), [["warm", 2]])
    }).pipe(Effect.scoped))

  it.effect("rates across keys forgotten and made again between two looks: each counts from its own start", () =>
    Effect.gen(function*() {
      const d = yield* Dispatcher.make<Job, string>({
        keyOf: (job) => job.key,
        spawn: Dispatcher.serveWith(() => Effect.succeed("ok"))
      })
      const send = (key: string, times: number) =>
        Effect.forEach(Array.from({ length: times }), () => Dispatcher.call(d, { key, hang: false }), { discard: true })
      // registry order: a, b, x, c
      yield* send("a", 2)
      yield* send("b", 1)
      yield* send("x", 5)
      yield* send("c", 3)
      yield* Dispatcher.hotKeys(d, { top: 10, by: "depth" })
      yield* TestClock.adjust("300 millis")
      // a and x are forgotten (the first key and one in the middle); b and c go on
      yield* Dispatcher.passivate(d, "a")
      yield* Dispatcher.passivate(d, "x")
      yield* send("b", 2)
      yield* send("c", 1)
      yield* TestClock.adjust("300 millis")
      // a again (a new entry, counting from 0), and a new key
      yield* send("a", 4)
      yield* send("d", 1)
      yield* TestClock.adjust("400 millis")
      const rates = yield* Dispatcher.hotKeys(d, { top: 10, by: "rate" })
      assert.deepStrictEqual(rates.map((k) => [k.key, k.rate]), [["a", 4], ["b", 2], ["c", 1], ["d", 1]])
    }).pipe(Effect.scoped))

  it.effect("data-last, and the failures of a key whose children keep failing", () =>
    Effect.gen(function*() {
      const d = yield* Dispatcher.make<Job, string>({ keyOf: (job) => job.key, spawn: () => Effect.fail("no") }, {
        restart: Schedule.spaced("1 second"),
        name: "flaky"
      })
      yield* Dispatcher.send(d, { key: "bad", hang: false })
      yield* TestClock.adjust("3 seconds")
      const ranked = yield* Dispatcher.hotKeys({ top: 3, by: "failures" })(d)
      assert.deepStrictEqual(ranked.map((k) => [k.path, k.key, k.failures, k.restarts, k.depth]), [["flaky", "bad", 4, 3, 1]])
    }).pipe(Effect.scoped, Effect.provideService(References.MinimumLogLevel, "None")))

  it.effect("bad options die with InvalidOptions naming the option and the value", () =>
    Effect.gen(function*() {
      const d = yield* Dispatcher.make<Job, string>({ keyOf: (job) => job.key, spawn: () => Effect.never })
      const died = (options: unknown) =>
        Effect.map(Effect.exit(Dispatcher.hotKeys(d, options as Dispatcher.HotKeysOptions)), (exit) => {
          assert.isTrue(Exit.isFailure(exit))
          const defect = Cause.squash((exit as Exit.Failure<unknown, unknown>).cause) as { _tag: string; message: string }
          return `${defect._tag}: ${defect.message}`
        })
      assert.strictEqual(
        yield* died({ top: 0, by: "depth" }),
        "InvalidOptions: top: expected a number of keys (a positive integer), got 0"
      )
      assert.strictEqual(yield* died({ top: 1, by: "size" }), "InvalidOptions: by: expected \"depth\" | \"oldest\" | \"rate\" | \"failures\", got \"size\"")
      assert.strictEqual(
        yield* died({ top: 1, by: "oldest", stuckAfter: "soon" }),
        "InvalidOptions: stuckAfter: expected a duration of zero or more (e.g. \"5 seconds\"), got \"soon\""
      )
      assert.strictEqual(
        yield* died({ top: 1, by: "rate", window: 0 }),
        "InvalidOptions: window: expected a positive duration (e.g. \"1 second\"), got 0"
      )
      assert.strictEqual(
        yield* died({ top: 1, by: "depth", stuck: "1 second" }),
        "InvalidOptions: stuck: unknown option (known: top, by, stuckAfter, window)"
      )
      assert.strictEqual(yield* died(null), "InvalidOptions: hotKeys options: expected an object, got null")
    }).pipe(Effect.scoped))

  it.effect("a handle of another implementation answers with its own hotKeys, or [] without one", () =>
    Effect.gen(function*() {
      const stats: Dispatcher.Stats = {
        live: 0,
        spawned: 0,
        successors: 0,
        failures: 0,
        accepted: 0,
        withdrawn: 0,
        rejected: { tooManyRequests: 0, unavailable: 0, requestTimeout: 0, childFailed: 0 }
      }
      const base: Dispatcher.Implementation<string, string> = {
        name: "double",
        send: () => Effect.die("unused"),
        call: () => Effect.die("unused"),
        shutdown: Effect.void,
        awaitStop: Effect.void,
        stats: Effect.succeed(stats),
        children: Effect.succeed([]),
        tree: Effect.succeed({ name: "double", path: "double", stats, children: [] })
      }
      assert.deepStrictEqual(yield* Dispatcher.hotKeys(Dispatcher.fromImplementation(base), { top: 3, by: "depth" }), [])
      const figures: Dispatcher.KeyFigures = {
        key: "k",
        path: "double",
        depth: 3,
        oldest: 10,
        rate: 0,
        failures: 0,
        restarts: 0,
        stuck: false
      }
      const seen: Array<Dispatcher.HotKeysOptions> = []
      const own = Dispatcher.fromImplementation({
        ...base,
        hotKeys: (options) => Effect.sync(() => (seen.push(options), [figures]))
      })
      assert.deepStrictEqual(yield* Dispatcher.hotKeys(own, { top: 3, by: "depth" }), [figures])
      assert.deepStrictEqual(seen, [{ top: 3, by: "depth" }])
      // validated before it is asked
      yield* Effect.exit(Dispatcher.hotKeys(own, { top: -1, by: "depth" }))
      assert.strictEqual(seen.length, 1)
    }))
})
