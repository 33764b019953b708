/**
 * The workloads, each written twice, line for line: once for Effect peers
 * (callers are fibers in one Effect program) and once for the plain-JS peer
 * (callers are async functions). Every measurement follows the same pattern:
 * warm up on a separate instance (about 2 s or 300,000 calls), size the timed
 * phase from the warm-up's rate, then time a fresh instance.
 */
import { Deferred, Effect, Exit, Scope } from "effect"
import type {
  EffectPeer,
  EffectService,
  MakeOptions,
  Measured,
  PeerInfo,
  PromisePeer,
  PromiseService,
  WorkloadName
} from "./types.js"
import { REJECTED, w1Of } from "./types.js"

export interface Params {
  readonly quick: boolean
  /** warm-up budget: whichever comes first */
  readonly warmupMillis: number
  readonly warmupCalls: number
  /** the timed phase's target length (its call count is sized from the warm-up's rate) */
  readonly measureMillis: number
  /** W4/W5: idle children */
  readonly children: number
}

/** Idle children for W4/W5: 100,000 (10,000 in --quick), unless the peer asks for fewer. */
export const idleChildren = (quick: boolean, peer: Pick<PeerInfo, "idleChildren">): number =>
  Math.min(quick ? 10_000 : 100_000, peer.idleChildren ?? Infinity)

export const paramsFor = (quick: boolean, peer: Pick<PeerInfo, "idleChildren">): Params =>
  quick
    ? { quick, warmupMillis: 400, warmupCalls: 100_000, measureMillis: 300, children: idleChildren(quick, peer) }
    : { quick, warmupMillis: 2_000, warmupCalls: 300_000, measureMillis: 2_000, children: idleChildren(quick, peer) }


// -----------------------------------------------------------------------------
// Shapes of the workloads
// -----------------------------------------------------------------------------

const W1_CALLERS = 1_024
const W1_CAPACITY = 2_048
const W2_CALLERS = 256
const W3_CALLERS = 1_024
const W3_GROUPS = 100
const W3_TOPICS = 100
const W4_CAPACITY = 64 // the library's default mailbox
const W6_CALLERS = 4_096
const W6_CAPACITY = 64

const keyNames = (count: number, prefix: string): Array<string> => Array.from({ length: count }, (_, i) => `${prefix}${i}`)

const now = () => performance.now()

/** CPU time of this process (all threads, user + system) in millis: robust to other load on the machine. */
const cpu = () => {
  const usage = process.cpuUsage()
  return (usage.user + usage.system) / 1_000
}

const gc = (): void => {
  const collect = (globalThis as { gc?: () => void }).gc
  if (collect !== undefined) {
    collect()
    collect()
  }
}

const heap = () => {
  const usage = process.memoryUsage()
  return { heap: usage.heapUsed, rss: usage.rss }
}

/** How many calls a timed phase of `millis` makes at `rate` (never fewer than `floor`). */
const sized = (rate: number, millis: number, floor: number): number =>
  Math.max(floor, Math.round((rate * millis) / 1_000))

/** Calls per second. */
const rateOf = (calls: number, ms: number): number => (calls * 1_000) / Math.max(ms, 0.001)

/** What a warm-up learnt: the rate to size the timed rounds by, and what it did. */
interface Rounds {
  readonly rate: number
  readonly calls: number
  readonly millis: number
  readonly wrong: number
}

/** W1-W3's figures, the same for both drivers. */
const throughputFigures = (total: number, ms: number, cpuMs: number, warmed: Rounds, wrong: number): Measured => ({
  value: (total * 1_000) / ms,
  unit: "calls/s",
  extra: { millis: ms, cpuMillis: cpuMs, perCpuSecond: (total * 1_000) / cpuMs },
  timedCalls: total,
  warmupCalls: warmed.calls,
  warmupMillis: warmed.millis,
  wrong
})

/** W5's figures, the same for both drivers. */
const shutdownFigures = (
  ms: number,
  cpuMs: number,
  children: number,
  counts: Pick<Measured, "warmupCalls" | "warmupMillis" | "wrong">
): Measured => ({
  value: ms,
  unit: "ms",
  extra: { children, cpuMillis: cpuMs },
  timedCalls: children,
  ...counts
})

/**
 * Warm-up rounds grow (doubling, but no longer than the time left at the last
 * round's rate) until the budget is spent; the last rounds give the rate.
 */
const nextRound = (round: number, elapsed: number, calls: number, params: Params, rate: number): number | undefined => {
  if (elapsed >= params.warmupMillis || calls >= params.warmupCalls) return undefined
  const fits = Math.round((rate * (params.warmupMillis - elapsed)) / 1_000)
  return Math.max(1, Math.min(round * 2, params.warmupCalls - calls, Math.max(fits, round >> 1)))
}

/** The smallest timed round: enough calls per caller that the ramp-up and tail do not matter. */
const minRound = (params: Params, callers: number) => callers * (params.quick ? 2 : 8)

// -----------------------------------------------------------------------------
// Effect drivers
// -----------------------------------------------------------------------------

/** `callers` fibers take the next `n` in [from, to) and make the call; answers are checked. */
const driveE = (
  callers: number,
  from: number,
  to: number,
  call: (n: number) => Effect.Effect<number, unknown>
): Effect.Effect<number, unknown> =>
  Effect.suspend(() => {
    let next = from
    let wrong = 0
    const loop: Effect.Effect<void, unknown> = Effect.suspend(() => {
      if (next >= to) return Effect.void
      const n = next++
      return Effect.flatMap(call(n), (answer) => {
        if (answer !== n) wrong++
        return loop
      })
    })
    return Effect.map(
      Effect.forEach(Array.from({ length: callers }), () => loop, { concurrency: "unbounded", discard: true }),
      () => wrong
    )
  })

/** An instance in a Scope of its own, closed by the caller. */
const instanceE = <A>(make: Effect.Effect<A, never, Scope.Scope>) =>
  Effect.flatMap(Scope.make(), (scope) => Effect.map(Scope.provide(make, scope), (value) => ({ value, scope })))

/** Warm up: rounds of `run(from, to)` on one instance, growing, until the budget is spent. */
const warmupE = (params: Params, first: number, run: (from: number, to: number) => Effect.Effect<number, unknown>) =>
  Effect.gen(function*() {
    const start = now()
    let calls = 0
    let wrong = 0
    let rate = 0
    let last = 0
    let round: number | undefined = first
    while (round !== undefined) {
      const t0 = now()
      wrong += yield* run(calls, calls + round)
      const ms = now() - t0
      last = rate
      rate = rateOf(round, ms)
      calls += round
      round = nextRound(round, now() - start, calls, params, rate)
    }
    return { rate: Math.max(rate, last), calls, millis: now() - start, wrong } satisfies Rounds
  })

const callsPerSecondE = (
  params: Params,
  options: MakeOptions,
  make: (options: MakeOptions) => Effect.Effect<{ call: (n: number) => Effect.Effect<number, unknown> }, never, Scope.Scope>,
  callers: number,
  prime: number
): Effect.Effect<Measured, unknown> =>
  Effect.gen(function*() {
    const warm = yield* instanceE(make(options))
    const warmed = yield* warmupE(params, callers, (from, to) => driveE(callers, from, to, warm.value.call))
    yield* Scope.close(warm.scope, Exit.void)

    const timed = yield* instanceE(make(options))
    // a fresh instance: its children are spawned before the clock starts (W1/W3 measure round trips)
    let wrong = warmed.wrong + (prime > 0 ? yield* driveE(callers, 0, prime, timed.value.call) : 0)
    gc()
    // timed rounds, each sized from the last rate, until the target length is reached
    let rate = warmed.rate
    let total = 0
    const c0 = cpu()
    const t0 = now()
    for (let elapsed = 0; elapsed < params.measureMillis * 0.8;) {
      const round = sized(rate, params.measureMillis - elapsed, minRound(params, callers))
      const r0 = now()
      wrong += yield* driveE(callers, prime + total, prime + total + round, timed.value.call)
      rate = rateOf(round, now() - r0)
      total += round
      elapsed = now() - t0
    }
    const ms = now() - t0
    const cpuMs = cpu() - c0
    yield* Scope.close(timed.scope, Exit.void)
    return throughputFigures(total, ms, cpuMs, warmed, wrong)
  })

const flatE = (peer: EffectPeer, keys: Array<string>) => (options: MakeOptions) =>
  Effect.map(peer.make(options), (service) => ({
    call: (n: number) => service.call(keys[n % keys.length]!, n)
  }))

const spawnIdleE = (service: EffectService, keys: Array<string>) =>
  driveE(W1_CALLERS, 0, keys.length, (n) => service.call(keys[n]!, n))

export const runEffect = (peer: EffectPeer, workload: WorkloadName, params: Params): Effect.Effect<Measured, unknown> => {
  const w1 = w1Of(workload)
  if (w1 !== undefined) {
    const keys = keyNames(w1.keys, "k")
    const options: MakeOptions = { capacity: W1_CAPACITY, child: "echo", handler: w1.handler }
    return callsPerSecondE(params, options, flatE(peer, keys), W1_CALLERS, w1.keys > 1 ? w1.keys : 0)
  }
  switch (workload) {
    case "w2":
      return callsPerSecondE(
        params,
        { capacity: W1_CAPACITY, child: "once" },
        (options) => Effect.map(peer.make(options), (service) => ({ call: (n: number) => service.call(`c${n}`, n) })),
        W2_CALLERS,
        0
      )
    case "w3": {
      const groups = keyNames(W3_GROUPS, "g")
      const topics = keyNames(W3_TOPICS, "t")
      return callsPerSecondE(
        params,
        { capacity: W1_CAPACITY, child: "echo" },
        (options) =>
          Effect.map(peer.makeTree!(options), (tree) => ({
            call: (n: number) => tree.call(groups[n % W3_GROUPS]!, topics[Math.floor(n / W3_GROUPS) % W3_TOPICS]!, n)
          })),
        W3_CALLERS,
        W3_GROUPS * W3_TOPICS
      )
    }
    case "w4":
      return memoryE(peer, params)
    case "w5":
      return shutdownE(peer, params)
    case "w6":
      return overloadE(peer, params)
    default:
      throw new Error(`no such workload: ${workload}`)
  }
}

/** W4's figures, the same for both drivers: heap and RSS grown per idle child. */
const memoryFigures = (
  before: ReturnType<typeof heap>,
  after: ReturnType<typeof heap>,
  children: number,
  counts: Pick<Measured, "warmupCalls" | "warmupMillis" | "wrong">
): Measured => ({
  value: (after.heap - before.heap) / children,
  unit: "bytes/child",
  extra: {
    rssPerChild: (after.rss - before.rss) / children,
    rssMB: after.rss / 1_048_576,
    heapMB: after.heap / 1_048_576
  },
  timedCalls: children,
  ...counts
})

/** W4: heap and RSS per idle child. */
const memoryE = (peer: EffectPeer, params: Params): Effect.Effect<Measured, unknown> =>
  Effect.gen(function*() {
    const keys = keyNames(params.children, "k")
    const options: MakeOptions = { capacity: W4_CAPACITY, child: "echo" }
    // warm-up: the same spawn on a smaller instance, twice
    const start = now()
    let wrong = 0
    let warmupCalls = 0
    for (let i = 0; i < (params.quick ? 1 : 2); i++) {
      const warm = yield* instanceE(peer.make(options))
      const some = keys.slice(0, Math.min(keys.length / 5, 20_000))
      wrong += yield* spawnIdleE(warm.value, some)
      warmupCalls += some.length
      yield* Scope.close(warm.scope, Exit.void)
    }
    const warmupMillis = now() - start

    const timed = yield* instanceE(peer.make(options))
    gc()
    yield* Effect.yieldNow
    gc()
    const before = heap()
    wrong += yield* spawnIdleE(timed.value, keys)
    gc()
    yield* Effect.sleep(10)
    gc()
    const after = heap()
    const result = memoryFigures(before, after, keys.length, { warmupCalls, warmupMillis, wrong })
    yield* Scope.close(timed.scope, Exit.void)
    return result
  })

/** W5: time to stop with `children` idle children. */
const shutdownE = (peer: EffectPeer, params: Params): Effect.Effect<Measured, unknown> =>
  Effect.gen(function*() {
    const keys = keyNames(params.children, "k")
    const options: MakeOptions = { capacity: W4_CAPACITY, child: "echo" }
    const some = keys.slice(0, Math.min(keys.length / 10, 10_000))
    const start = now()
    let wrong = 0
    let warmupCalls = 0
    let cycles = 0
    // warm-up: spawn-and-stop cycles on smaller instances
    while (cycles < 2 || (now() - start < params.warmupMillis && cycles < 20)) {
      const warm = yield* instanceE(peer.make(options))
      wrong += yield* spawnIdleE(warm.value, some)
      warmupCalls += some.length
      yield* Scope.close(warm.scope, Exit.void)
      cycles++
    }
    const warmupMillis = now() - start

    const timed = yield* instanceE(peer.make(options))
    wrong += yield* spawnIdleE(timed.value, keys)
    gc()
    const c0 = cpu()
    const t0 = now()
    yield* Scope.close(timed.scope, Exit.void)
    const ms = now() - t0
    return shutdownFigures(ms, cpu() - c0, keys.length, { warmupCalls, warmupMillis, wrong })
  })

/** W6's figures, the same for both drivers: (a) the overload, (b) rejections alone, (c) accepted round trips alone. */
const overloadFigures = (
  overload: { readonly accepted: number; readonly rejected: number; readonly ms: number },
  rejections: { readonly rejected: number; readonly ms: number },
  accepted: { readonly calls: number; readonly ms: number },
  cpuMillis: { readonly rejected: number; readonly accepted: number },
  counts: Pick<Measured, "timedCalls" | "warmupCalls" | "warmupMillis" | "wrong">
): Measured => {
  const rejectNs = (rejections.ms * 1e6) / rejections.rejected
  const acceptNs = (accepted.ms * 1e6) / accepted.calls
  const rejectCpuNs = (cpuMillis.rejected * 1e6) / rejections.rejected
  const acceptCpuNs = (cpuMillis.accepted * 1e6) / accepted.calls
  return {
    value: (overload.accepted * 1_000) / overload.ms,
    unit: "accepted/s",
    extra: {
      rejectedPerSec: (overload.rejected * 1_000) / overload.ms,
      rejectNs,
      acceptNs,
      rejectOverAccept: rejectNs / acceptNs,
      rejectCpuNs,
      acceptCpuNs,
      rejectOverAcceptCpu: rejectCpuNs / acceptCpuNs
    },
    ...counts
  }
}

/** W6: 4,096 callers on one key: accepted/s and rejected/s, and the cost of a rejection against an accepted call. */
const overloadE = (peer: EffectPeer, params: Params): Effect.Effect<Measured, unknown> =>
  Effect.gen(function*() {
    const key = "hot"
    const third: Params = { ...params, warmupMillis: params.warmupMillis / 3, measureMillis: params.measureMillis / 2 }

    // (a) overload: capacity 64, everyone retries at once when shed
    const overload = (service: EffectService, total: number) =>
      Effect.suspend(() => {
        let next = 0
        let accepted = 0
        let rejected = 0
        let wrong = 0
        const loop: Effect.Effect<void, unknown> = Effect.suspend(() => {
          if (next >= total) return Effect.void
          const n = next++
          return Effect.flatMap(service.tryCall(key, n), (answer) => {
            if (answer === REJECTED) {
              rejected++
              // shed: let the others run before trying again, as `await` does in the plain driver
              // (without it, 4,096 fibers spinning on a synchronous failure starve the child)
              return Effect.andThen(Effect.yieldNow, loop)
            }
            accepted++
            if (answer !== n) wrong++
            return loop
          })
        })
        const t0 = now()
        return Effect.map(
          Effect.forEach(Array.from({ length: W6_CALLERS }), () => loop, { concurrency: "unbounded", discard: true }),
          () => ({ accepted, rejected, wrong, ms: now() - t0 })
        )
      })

    // (b) rejection alone: a child that never answers, a full mailbox; time until `total` rejections
    const rejections = (service: EffectService, total: number) =>
      Effect.gen(function*() {
        let next = 0
        let rejected = 0
        const done = Deferred.makeUnsafe<void>()
        const loop: Effect.Effect<void, unknown> = Effect.suspend(() => {
          if (rejected >= total) return Effect.void
          return Effect.flatMap(service.tryCall(key, next++), (answer) => {
            if (answer === REJECTED && ++rejected === total) Deferred.doneUnsafe(done, Exit.void)
            return loop
          })
        })
        const callers = yield* Scope.make()
        const t0 = now()
        for (let i = 0; i < W6_CALLERS; i++) yield* Effect.forkIn(loop, callers)
        yield* Deferred.await(done)
        const ms = now() - t0
        // the callers stuck on accepted requests are left behind, with the stuck instance
        return { ms, rejected }
      })

    const start = now()
    let warmupCalls = 0
    // warm-up (a)
    const warmA = yield* instanceE(peer.make({ capacity: W6_CAPACITY, child: "echo" }))
    let rateA = 0
    let wrong = 0
    for (let round: number | undefined = W6_CALLERS, calls = 0, t = now(); round !== undefined;) {
      const r = yield* overload(warmA.value, round)
      rateA = rateOf(round, r.ms)
      wrong += r.wrong
      calls += round
      warmupCalls += round
      round = nextRound(round, now() - t, calls, third, rateA)
    }
    yield* Scope.close(warmA.scope, Exit.void)
    // warm-up (b), on a stuck instance that is never stopped (its child never ends)
    const warmB = yield* instanceE(peer.make({ capacity: W6_CAPACITY, child: "stuck" }))
    let rateB = 0
    for (let round: number | undefined = W6_CALLERS, calls = 0, t = now(); round !== undefined;) {
      const r = yield* rejections(warmB.value, round)
      rateB = rateOf(round, r.ms)
      calls += round
      warmupCalls += round
      round = nextRound(round, now() - t, calls, third, rateB)
    }
    // warm-up (c): the same callers and the same `tryCall`, a mailbox big enough for all: accepted round trips only
    const c = W6_CALLERS
    const cOptions: MakeOptions = { capacity: W6_CALLERS * 2, child: "echo" }
    const warmC = yield* instanceE(peer.make(cOptions))
    const warmedC = yield* warmupE(third, c, (from, to) => driveE(c, from, to, (n) => warmC.value.tryCall(key, n)))
    warmupCalls += warmedC.calls
    wrong += warmedC.wrong
    yield* Scope.close(warmC.scope, Exit.void)
    const warmupMillis = now() - start

    // timed (a)
    const a = yield* instanceE(peer.make({ capacity: W6_CAPACITY, child: "echo" }))
    const totalA = sized(rateA, params.measureMillis, minRound(params, W6_CALLERS))
    gc()
    const ra = yield* overload(a.value, totalA)
    yield* Scope.close(a.scope, Exit.void)
    // timed (b)
    const b = yield* instanceE(peer.make({ capacity: W6_CAPACITY, child: "stuck" }))
    const totalB = sized(rateB, third.measureMillis, minRound(params, W6_CALLERS))
    gc()
    const cb = cpu()
    const rb = yield* rejections(b.value, totalB)
    const cpuB = cpu() - cb
    // timed (c)
    const cc = yield* instanceE(peer.make(cOptions))
    const totalC = sized(warmedC.rate, third.measureMillis, minRound(params, W6_CALLERS))
    gc()
    const c0 = cpu()
    const tc = now()
    wrong += yield* driveE(c, 0, totalC, (n) => cc.value.tryCall(key, n))
    const msC = now() - tc
    const cpuC = cpu() - c0
    yield* Scope.close(cc.scope, Exit.void)

    return overloadFigures(ra, rb, { ms: msC, calls: totalC }, { rejected: cpuB, accepted: cpuC }, {
      timedCalls: totalA + totalB + totalC,
      warmupCalls,
      warmupMillis,
      wrong: wrong + ra.wrong
    })
  })

// -----------------------------------------------------------------------------
// Promise drivers: the same, with `await`
// -----------------------------------------------------------------------------

const driveP = async (
  callers: number,
  from: number,
  to: number,
  call: (n: number) => Promise<number>
): Promise<number> => {
  let next = from
  let wrong = 0
  const loop = async () => {
    while (next < to) {
      const n = next++
      const answer = await call(n)
      if (answer !== n) wrong++
    }
  }
  await Promise.all(Array.from({ length: callers }, loop))
  return wrong
}

const warmupP = async (params: Params, first: number, run: (from: number, to: number) => Promise<number>) => {
  const start = now()
  let calls = 0
  let wrong = 0
  let rate = 0
  let last = 0
  let round: number | undefined = first
  while (round !== undefined) {
    const t0 = now()
    wrong += await run(calls, calls + round)
    const ms = now() - t0
    last = rate
    rate = rateOf(round, ms)
    calls += round
    round = nextRound(round, now() - start, calls, params, rate)
  }
  return { rate: Math.max(rate, last), calls, millis: now() - start, wrong } satisfies Rounds
}

const callsPerSecondP = async (
  params: Params,
  make: () => { call: (n: number) => Promise<number>; stop: () => Promise<void> },
  callers: number,
  prime: number
): Promise<Measured> => {
  const warm = make()
  const warmed = await warmupP(params, callers, (from, to) => driveP(callers, from, to, warm.call))
  await warm.stop()

  const timed = make()
  let wrong = warmed.wrong + (prime > 0 ? await driveP(callers, 0, prime, timed.call) : 0)
  gc()
  let rate = warmed.rate
  let total = 0
  const c0 = cpu()
  const t0 = now()
  for (let elapsed = 0; elapsed < params.measureMillis * 0.8;) {
    const round = sized(rate, params.measureMillis - elapsed, minRound(params, callers))
    const r0 = now()
    wrong += await driveP(callers, prime + total, prime + total + round, timed.call)
    rate = rateOf(round, now() - r0)
    total += round
    elapsed = now() - t0
  }
  const ms = now() - t0
  const cpuMs = cpu() - c0
  await timed.stop()
  return throughputFigures(total, ms, cpuMs, warmed, wrong)
}

const spawnIdleP = (service: PromiseService, keys: Array<string>) =>
  driveP(W1_CALLERS, 0, keys.length, (n) => service.call(keys[n]!, n))

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 10))

export const runPromise = async (peer: PromisePeer, workload: WorkloadName, params: Params): Promise<Measured> => {
  const w1 = w1Of(workload)
  if (w1 !== undefined) {
    const k = w1.keys
    const keys = keyNames(k, "k")
    return callsPerSecondP(params, () => {
      const service = peer.make({ capacity: W1_CAPACITY, child: "echo", handler: w1.handler })
      return { call: (n) => service.call(keys[n % k]!, n), stop: service.stop }
    }, W1_CALLERS, k > 1 ? k : 0)
  }
  switch (workload) {
    case "w2":
      return callsPerSecondP(params, () => {
        const service = peer.make({ capacity: W1_CAPACITY, child: "once" })
        return { call: (n) => service.call(`c${n}`, n), stop: service.stop }
      }, W2_CALLERS, 0)
    case "w3": {
      const groups = keyNames(W3_GROUPS, "g")
      const topics = keyNames(W3_TOPICS, "t")
      return callsPerSecondP(params, () => {
        const tree = peer.makeTree!({ capacity: W1_CAPACITY })
        return {
          call: (n) => tree.call(groups[n % W3_GROUPS]!, topics[Math.floor(n / W3_GROUPS) % W3_TOPICS]!, n),
          stop: tree.stop
        }
      }, W3_CALLERS, W3_GROUPS * W3_TOPICS)
    }
    case "w4": {
      const keys = keyNames(params.children, "k")
      const options: MakeOptions = { capacity: W4_CAPACITY, child: "echo" }
      const start = now()
      let wrong = 0
      let warmupCalls = 0
      for (let i = 0; i < (params.quick ? 1 : 2); i++) {
        const warm = peer.make(options)
        const some = keys.slice(0, Math.min(keys.length / 5, 20_000))
        wrong += await spawnIdleP(warm, some)
        warmupCalls += some.length
        await warm.stop()
      }
      const warmupMillis = now() - start
      const timed = peer.make(options)
      gc()
      await tick()
      gc()
      const before = heap()
      wrong += await spawnIdleP(timed, keys)
      gc()
      await tick()
      gc()
      const after = heap()
      await timed.stop()
      return memoryFigures(before, after, keys.length, { warmupCalls, warmupMillis, wrong })
    }
    case "w5": {
      const keys = keyNames(params.children, "k")
      const options: MakeOptions = { capacity: W4_CAPACITY, child: "echo" }
      const some = keys.slice(0, Math.min(keys.length / 10, 10_000))
      const start = now()
      let wrong = 0
      let warmupCalls = 0
      let cycles = 0
      while (cycles < 2 || (now() - start < params.warmupMillis && cycles < 20)) {
        const warm = peer.make(options)
        wrong += await spawnIdleP(warm, some)
        warmupCalls += some.length
        await warm.stop()
        cycles++
      }
      const warmupMillis = now() - start
      const timed = peer.make(options)
      wrong += await spawnIdleP(timed, keys)
      gc()
      const c0 = cpu()
      const t0 = now()
      await timed.stop()
      const ms = now() - t0
      return shutdownFigures(ms, cpu() - c0, keys.length, { warmupCalls, warmupMillis, wrong })
    }
    case "w6":
      return overloadP(peer, params)
    default:
      throw new Error(`no such workload: ${workload}`)
  }
}

const overloadP = async (peer: PromisePeer, params: Params): Promise<Measured> => {
  const key = "hot"
  const third: Params = { ...params, warmupMillis: params.warmupMillis / 3, measureMillis: params.measureMillis / 2 }

  const overload = async (service: PromiseService, total: number) => {
    let next = 0
    let accepted = 0
    let rejected = 0
    let wrong = 0
    const loop = async () => {
      while (next < total) {
        const n = next++
        const answer = await service.tryCall(key, n)
        if (answer === REJECTED) rejected++
        else {
          accepted++
          if (answer !== n) wrong++
        }
      }
    }
    const t0 = now()
    await Promise.all(Array.from({ length: W6_CALLERS }, loop))
    return { accepted, rejected, wrong, ms: now() - t0 }
  }

  const rejections = async (service: PromiseService, total: number) => {
    let next = 0
    let rejected = 0
    let signal!: () => void
    const done = new Promise<void>((resolve) => (signal = resolve))
    const loop = async () => {
      while (rejected < total) {
        const answer = await service.tryCall(key, next++)
        if (answer === REJECTED && ++rejected === total) signal()
      }
    }
    const t0 = now()
    for (let i = 0; i < W6_CALLERS; i++) void loop()
    await done
    return { ms: now() - t0, rejected }
  }

  const start = now()
  let warmupCalls = 0
  let wrong = 0
  const warmA = peer.make({ capacity: W6_CAPACITY, child: "echo" })
  let rateA = 0
  for (let round: number | undefined = W6_CALLERS, calls = 0, t = now(); round !== undefined;) {
    const r = await overload(warmA, round)
    rateA = rateOf(round, r.ms)
    wrong += r.wrong
    calls += round
    warmupCalls += round
    round = nextRound(round, now() - t, calls, third, rateA)
  }
  await warmA.stop()
  const warmB = peer.make({ capacity: W6_CAPACITY, child: "stuck" })
  let rateB = 0
  for (let round: number | undefined = W6_CALLERS, calls = 0, t = now(); round !== undefined;) {
    const r = await rejections(warmB, round)
    rateB = rateOf(round, r.ms)
    calls += round
    warmupCalls += round
    round = nextRound(round, now() - t, calls, third, rateB)
  }
  const c = W6_CALLERS
  const cOptions: MakeOptions = { capacity: W6_CALLERS * 2, child: "echo" }
  const warmC = peer.make(cOptions)
  const warmedC = await warmupP(third, c, (from, to) => driveP(c, from, to, (n) => warmC.tryCall(key, n)))
  warmupCalls += warmedC.calls
  wrong += warmedC.wrong
  await warmC.stop()
  const warmupMillis = now() - start

  const a = peer.make({ capacity: W6_CAPACITY, child: "echo" })
  const totalA = sized(rateA, params.measureMillis, minRound(params, W6_CALLERS))
  gc()
  const ra = await overload(a, totalA)
  await a.stop()
  const b = peer.make({ capacity: W6_CAPACITY, child: "stuck" })
  const totalB = sized(rateB, third.measureMillis, minRound(params, W6_CALLERS))
  gc()
  const cb = cpu()
  const rb = await rejections(b, totalB)
  const cpuB = cpu() - cb
  const cc = peer.make(cOptions)
  const totalC = sized(warmedC.rate, third.measureMillis, minRound(params, W6_CALLERS))
  gc()
  const c0 = cpu()
  const tc = now()
  wrong += await driveP(c, 0, totalC, (n) => cc.tryCall(key, n))
  const msC = now() - tc
  const cpuC = cpu() - c0
  await cc.stop()

  return overloadFigures(ra, rb, { ms: msC, calls: totalC }, { rejected: cpuB, accepted: cpuC }, {
    timedCalls: totalA + totalB + totalC,
    warmupCalls,
    warmupMillis,
    wrong: wrong + ra.wrong
  })
}
