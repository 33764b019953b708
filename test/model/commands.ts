/**
 * The commands of a generated history, each applied to the model and to the
 * real dispatcher side by side, then compared (see compare.ts).
 */
import fc from "fast-check"
import { type Candidates, expectEqual, step } from "./compare.js"
import {
  type Config,
  type EndHow,
  type Entry,
  type Model,
  type Outcome,
  type Request,
  requestFor,
  showOutcome
} from "./model.js"
import type { Real } from "./real.js"

export type Cmd = fc.AsyncCommand<Candidates, Real>

const pick = (model: Model, n: number): Entry | undefined => {
  const live = model.liveCtl()
  return live.length === 0 ? undefined : live[n % live.length]
}

const newId = (model: Model) => model.nextId()

const showSent = (sent: Outcome | "accepted" | "waiting"): string => typeof sent === "string" ? sent : showOutcome(sent)

/** Apply a command to every candidate model, keeping what each expects. */
const onEach = <A>(candidates: Candidates, f: (model: Model) => A): Map<Model, A> =>
  new Map(candidates.list.map((model) => [model, f(model)]))

export class Send implements Cmd {
  /** `afterStop`: also sent once the root is stopping (most sends are only tried while it runs) */
  constructor(readonly spec: Omit<Request, "id">, readonly afterStop: boolean) {}
  check(c: Readonly<Candidates>): boolean {
    return this.afterStop || c.rootRunning
  }
  async run(c: Candidates, real: Real): Promise<void> {
    const req: Request = { id: newId(c.model), ...this.spec }
    onEach(c, (m) => m.send(req))
    const sent = await real.send(req)
    await step(c, real, `after ${this}`, (m) => {
      if (req.mode === "send") {
        expectEqual(m, `send #${req.id}: accepted, waiting for room, or refused at once`, showSent(sent), showSent(m.sendStatus(req.id)))
      }
    })
  }
  toString(): string {
    const s = this.spec
    const flags = `${s.badRoot ? " badRoot" : ""}${s.badInner ? " badInner" : ""}`
    const path = s.root !== "g" ? s.root : s.inner !== "h" ? `g/${s.inner}` : `g/h/${s.leaf}`
    return `${s.mode}(${path}${s.work > 0 ? ` work=${s.work}` : ""}${flags})`
  }
}

/** A command on the live controlled child `child` (modulo how many are live): only when there is one. */
abstract class OnLiveChild implements Cmd {
  constructor(readonly child: number) {}
  check(c: Readonly<Candidates>): boolean {
    return pick(c.model, this.child) !== undefined
  }
  /** the path of the child it acts on (check said there is one) */
  protected pathIn(c: Readonly<Candidates>): string {
    return pick(c.model, this.child)!.path
  }
  abstract run(c: Candidates, real: Real): Promise<void>
}

export class Take extends OnLiveChild {
  constructor(child: number, readonly n: number) {
    super(child)
  }
  async run(c: Candidates, real: Real): Promise<void> {
    const path = this.pathIn(c)
    const expected = onEach(c, (m) => m.take(path, this.n))
    const taken = await real.take(path, this.n)
    await step(c, real, `after ${this} at ${path}`, (m) => expectEqual(m, `${path} takes ${this.n}`, taken, expected.get(m)))
  }
  override toString(): string {
    return `take(child#${this.child}, ${this.n})`
  }
}

export class Reply extends OnLiveChild {
  constructor(child: number, readonly index: number, readonly ok: boolean) {
    super(child)
  }
  override check(c: Readonly<Candidates>): boolean {
    const entry = pick(c.model, this.child)
    return entry !== undefined && c.model.heldOf(entry).length > 0
  }
  async run(c: Candidates, real: Real): Promise<void> {
    const path = this.pathIn(c)
    const expected = onEach(c, (m) => m.reply(path, this.index, this.ok))
    const replied = await real.reply(path, this.index, this.ok)
    await step(
      c,
      real,
      `after ${this} at ${path}`,
      (m) => expectEqual(m, `${path} replies (first answer wins)`, replied, expected.get(m))
    )
  }
  override toString(): string {
    return `reply(child#${this.child}, held#${this.index}, ${this.ok ? "succeed" : "fail"})`
  }
}

/** A live controlled child ends (also used by the final stop). */
export const endChild = async (c: Candidates, real: Real, path: string, how: EndHow, when: string): Promise<void> => {
  onEach(c, (m) => m.end(path, how))
  await real.end(path, how)
  await step(c, real, when)
}

/** Time passes in the model (every order of what is due together) and the real system. */
export const advance = async (c: Candidates, real: Real, millis: number, when: string): Promise<void> => {
  c.advance(millis)
  await real.advance(millis)
  await step(c, real, when)
}

export class End extends OnLiveChild {
  constructor(child: number, readonly how: EndHow) {
    super(child)
  }
  async run(c: Candidates, real: Real): Promise<void> {
    const path = this.pathIn(c)
    await endChild(c, real, path, this.how, `after ${this} at ${path}`)
  }
  override toString(): string {
    return `end(child#${this.child}, ${this.how})`
  }
}

export class InterruptServe implements Cmd {
  constructor(readonly child: number) {}
  check(c: Readonly<Candidates>): boolean {
    return c.model.liveServe().length > 0
  }
  async run(c: Candidates, real: Real): Promise<void> {
    const live = c.model.liveServe()
    const path = live[this.child % live.length]!.path
    onEach(c, (m) => m.interruptServe(path))
    await real.interruptServe(path)
    await step(c, real, `after ${this} at ${path}`)
  }
  toString(): string {
    return `interruptServe(serve#${this.child})`
  }
}

/**
 * A child that keeps failing: it ends by failure or defect, time passes to its
 * successor's start, and the successor does the same, `times` times (or until
 * the key is forgotten or given up). Reaches the default schedule's give-up.
 */
export class CrashLoop extends OnLiveChild {
  constructor(child: number, readonly times: number, readonly how: "fail" | "die") {
    super(child)
  }
  async run(c: Candidates, real: Real): Promise<void> {
    const path = this.pathIn(c)
    for (let i = 0; i < this.times; i++) {
      if (c.model.ctlAt(path) === undefined) break
      await endChild(c, real, path, this.how, `after ${this} at ${path}, crash ${i + 1}`)
      // just long enough for the successor to start
      const entry = c.model.levels().flatMap((level) => [...level.entries.values()]).find((e) => e.path === path)
      if (entry === undefined || entry.phase !== "restarting") break
      const delay = entry.restartAt - c.model.now
      await advance(c, real, delay, `after ${this} at ${path}, ${delay} ms after crash ${i + 1}`)
    }
  }
  override toString(): string {
    return `crashLoop(child#${this.child}, ${this.times}x ${this.how})`
  }
}

export class Advance implements Cmd {
  constructor(readonly millis: number) {}
  check(): boolean {
    return true
  }
  async run(c: Candidates, real: Real): Promise<void> {
    await advance(c, real, this.millis, `after ${this}`)
  }
  toString(): string {
    return `advance(${this.millis} ms)`
  }
}

export class Shutdown implements Cmd {
  /** `again`: also once the stop has begun (it is idempotent) */
  constructor(readonly via: "shutdown" | "scope", readonly again: boolean) {}
  check(c: Readonly<Candidates>): boolean {
    return c.rootRunning || this.again
  }
  async run(c: Candidates, real: Real): Promise<void> {
    onEach(c, (m) => m.shutdown())
    await real.shutdown(this.via)
    await step(c, real, `after ${this}`)
  }
  toString(): string {
    return `shutdown(via ${this.via})`
  }
}

/**
 * The caller of a `call` that still waits (for its answer, or for room) is
 * interrupted: its request is withdrawn (DESIGN 6 as the README reads it).
 * Calls are picked by index among those waiting, oldest first.
 */
export class Withdraw implements Cmd {
  constructor(readonly call: number) {}
  check(c: Readonly<Candidates>): boolean {
    return c.model.waitingCalls().length > 0
  }
  async run(c: Candidates, real: Real): Promise<void> {
    const waiting = c.model.waitingCalls()
    const id = waiting[this.call % waiting.length]!
    onEach(c, (m) => m.withdraw(id))
    await real.interruptCall(id)
    await step(c, real, `after ${this}: #${id}`)
  }
  toString(): string {
    return `withdraw(call#${this.call})`
  }
}

const paths = ["a", "b", "s", "t", "g", "g/x", "g/y", "g/s", "g/t", "g/h", "g/h/u", "g/h/w", "g/h/v"]

/** The next child to end at a path sends a request for its own key from a finalizer, racing its own disposal (DESIGN 3). */
export class ArmLastWords implements Cmd {
  constructor(readonly path: string) {}
  check(c: Readonly<Candidates>): boolean {
    return c.model.armed === undefined
  }
  async run(c: Candidates, real: Real): Promise<void> {
    onEach(c, (m) => m.arm(this.path))
    real.armed = this.path
    await step(c, real, `after ${this}`)
  }
  toString(): string {
    return `armLastWords(${this.path})`
  }
}

/** The next spawn for a path throws while building its effect (DESIGN 9: handled like a child that died). */
export class PoisonSpawn implements Cmd {
  constructor(readonly path: string) {}
  check(): boolean {
    return true
  }
  async run(c: Candidates, real: Real): Promise<void> {
    onEach(c, (m) => m.poison(this.path))
    real.poisoned.add(this.path)
    await step(c, real, `after ${this}`)
  }
  toString(): string {
    return `poisonSpawn(${this.path})`
  }
}

/**
 * Many requests through one controlled child, each taken at once and two in
 * three answered: a long-lived child's book-keeping of what it took (and must
 * be answered for it if it ends) grows past its compaction threshold.
 */
export class Churn extends OnLiveChild {
  constructor(child: number, readonly count: number) {
    super(child)
  }
  override check(c: Readonly<Candidates>): boolean {
    return c.rootRunning && super.check(c)
  }
  async run(c: Candidates, real: Real): Promise<void> {
    const path = this.pathIn(c)
    for (let i = 0; i < this.count && c.model.ctlAt(path) !== undefined; i++) {
      const req = requestFor(path, newId(c.model))
      onEach(c, (m) => m.send(req))
      const sent = await real.send(req)
      // what `send` has done once it settled, before the take below makes room
      const expectedSent = onEach(c, (m) => showSent(m.sendStatus(req.id)))
      const expectedTaken = onEach(c, (m) => m.take(path, 1))
      const taken = await real.take(path, 1)
      for (const m of c.list) {
        expectEqual(m, `churn send #${req.id}`, showSent(sent), expectedSent.get(m))
        expectEqual(m, `churn: ${path} takes`, taken, expectedTaken.get(m))
      }
      if (i % 3 !== 0 && taken.length > 0) {
        const held = c.model.heldOf(c.model.ctlAt(path)!).length
        const expectedReply = onEach(c, (m) => m.reply(path, held - 1, true))
        const replied = await real.reply(path, held - 1, true)
        for (const m of c.list) expectEqual(m, `churn: ${path} replies`, replied, expectedReply.get(m))
      }
    }
    await step(c, real, `after ${this} at ${path}`)
  }
  override toString(): string {
    return `churn(child#${this.child}, ${this.count})`
  }
}

/** One step of a burst: a request sent, or a controlled child (live as the burst begins) taking or ending. */
export type BurstStep =
  | { readonly _tag: "send"; readonly spec: Omit<Request, "id"> }
  | { readonly _tag: "end"; readonly child: number; readonly how: EndHow }
  | { readonly _tag: "take"; readonly child: number }

/**
 * Several sends and ends in one synchronous step, as concurrent callers and
 * children ending by themselves produce them: nothing scheduled runs in
 * between (a passivated child's mailbox ends only after the burst, successors
 * start after it). The races of passivation, revival and a child's own end
 * live here.
 */
export class Burst implements Cmd {
  constructor(readonly steps: ReadonlyArray<BurstStep>) {}
  check(c: Readonly<Candidates>): boolean {
    return c.rootRunning
  }
  async run(c: Candidates, real: Real): Promise<void> {
    // children that may end in it: those live as it begins, each once
    const live = c.model.liveCtl().map((e) => e.path)
    const ended = new Set<string>()
    const sends: Array<Request> = []
    const done: Array<string> = []
    for (const m of c.list) m.hold()
    try {
      for (const step of this.steps) {
        if (step._tag === "send") {
          const req: Request = { id: newId(c.model), ...step.spec }
          onEach(c, (m) => m.send(req))
          real.sendNow(req)
          sends.push(req)
          done.push(`send #${req.id}`)
        } else if (live.length > 0) {
          const path = live[step.child % live.length]!
          if (ended.has(path) || c.model.ctlAt(path) === undefined) continue
          if (step._tag === "take") {
            const expected = onEach(c, (m) => m.take(path, 1))
            const taken = real.takeNow(path, 1)
            for (const m of c.list) expectEqual(m, `burst: ${path} takes 1`, taken, expected.get(m))
            done.push(`take ${path} [${taken.join(", ")}]`)
            continue
          }
          ended.add(path)
          onEach(c, (m) => m.end(path, step.how))
          real.endNow(path, step.how)
          done.push(`end ${path} ${step.how}`)
        }
      }
    } finally {
      for (const m of c.list) m.release()
    }
    await real.run(real.settle)
    await step(c, real, `after ${this}: ${done.join(", ")}`, (m) => {
      for (const req of sends) {
        if (req.mode === "send") {
          expectEqual(m, `burst send #${req.id}: accepted, waiting for room, or refused at once`, showSent(real.sendStatus(req.id)), showSent(m.sendStatus(req.id)))
        }
      }
    })
  }
  toString(): string {
    return `burst(${
      this.steps.map((s) =>
        s._tag === "send"
          ? new Send(s.spec, false).toString()
          : s._tag === "take"
          ? `take(child#${s.child}, 1)`
          : `end(child#${s.child}, ${s.how})`
      ).join(", ")
    })`
  }
}

// -----------------------------------------------------------------------------
// Arbitraries
// -----------------------------------------------------------------------------

export const configArb: fc.Arbitrary<Config> = fc.record({
  rootCapacity: fc.integer({ min: 1, max: 3 }),
  innerCapacity: fc.integer({ min: 1, max: 2 }),
  rootTimeout: fc.option(fc.constantFrom(40, 100, 250), { nil: undefined, freq: 2 }),
  // fc.option's `freq` is the inverse of the chance of `nil`: 2 is one time in two (1 would be always)
  innerTimeout: fc.option(fc.constantFrom(30, 100), { nil: undefined, freq: 2 }),
  restart: fc.constantFrom<Config["restart"]>("short", "short", "default"),
  idleTimeToLive: fc.option(fc.constantFrom(20, 60), { nil: undefined, freq: 2 }),
  rootMaxChildren: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined, freq: 2 }),
  innerMaxChildren: fc.option(fc.integer({ min: 1, max: 2 }), { nil: undefined, freq: 2 }),
  // 0 is accepted, and the same as "reject"
  rootOverflowWait: fc.option(fc.constantFrom(0, 15, 50, 50), { nil: undefined, freq: 2 }),
  innerOverflowWait: fc.option(fc.constantFrom(10, 40), { nil: undefined, freq: 2 }),
  leafCapacity: fc.integer({ min: 1, max: 2 }),
  leafMaxChildren: fc.option(fc.integer({ min: 1, max: 2 }), { nil: undefined, freq: 2 }),
  tOnStop: fc.constantFrom<Config["tOnStop"]>("drain", "interrupt")
})

const sendArb: fc.Arbitrary<Cmd> = fc.record({
  root: fc.constantFrom("a", "a", "b", "s", "t", "g", "g", "g", "g"),
  inner: fc.constantFrom("x", "x", "y", "s", "t", "h", "h", "h"),
  leaf: fc.constantFrom("u", "u", "w", "v"),
  // 30 and 40 meet the 30 and 40 ms timeouts: a handler done exactly at its deadline
  work: fc.constantFrom(0, 0, 10, 25, 30, 40),
  badRoot: fc.integer({ min: 0, max: 24 }).map((n) => n === 0),
  badInner: fc.integer({ min: 0, max: 15 }).map((n) => n === 0),
  mode: fc.constantFrom<"send" | "call">("send", "call"),
  afterStop: fc.integer({ min: 0, max: 4 }).map((n) => n === 0)
}).map(({ afterStop, ...spec }) => new Send(spec, afterStop))

const childArb = fc.nat({ max: 7 })

const burstArb: fc.Arbitrary<Cmd> = fc.array(
  fc.oneof(
    {
      arbitrary: sendArb.map((send): BurstStep => ({ _tag: "send", spec: (send as Send).spec })),
      weight: 3
    },
    {
      arbitrary: fc.tuple(childArb, fc.constantFrom<EndHow>("success", "success", "fail", "die", "interrupt")).map((
        [child, how]
      ): BurstStep => ({ _tag: "end", child, how })),
      weight: 1
    },
    { arbitrary: childArb.map((child): BurstStep => ({ _tag: "take", child })), weight: 1 }
  ),
  { minLength: 2, maxLength: 8 }
).map((steps) => new Burst(steps))

/** One arbitrary over every command, weighted. */
export const commandArb: fc.Arbitrary<Cmd> = fc.oneof(
  { arbitrary: sendArb, weight: 14 },
  { arbitrary: burstArb, weight: 8 },
  { arbitrary: fc.tuple(childArb, fc.integer({ min: 1, max: 3 })).map(([c, n]) => new Take(c, n)), weight: 8 },
  {
    arbitrary: fc.tuple(childArb, fc.nat({ max: 3 }), fc.boolean()).map(([c, i, ok]) =>
      new Reply(c, i, ok || i % 2 === 0)
    ),
    weight: 6
  },
  {
    arbitrary: fc.tuple(childArb, fc.constantFrom<EndHow>("success", "fail", "fail", "die", "interrupt")).map((
      [c, how]
    ) => new End(c, how)),
    weight: 5
  },
  {
    arbitrary: fc.tuple(childArb, fc.constantFrom<EndHow>("fail", "fail", "die")).map(([c, how]) => new End(c, how)),
    weight: 3
  },
  {
    // 10 crashes in a row reach the default schedule's give-up, 11 would see an eleventh child
    arbitrary: fc.tuple(childArb, fc.constantFrom(2, 3, 4, 9, 10, 11), fc.constantFrom<"fail" | "die">("fail", "die")).map((
      [c, times, how]
    ) => new CrashLoop(c, times, how)),
    weight: 2
  },
  { arbitrary: fc.nat({ max: 3 }).map((c) => new InterruptServe(c)), weight: 1 },
  { arbitrary: fc.nat({ max: 5 }).map((c) => new Withdraw(c)), weight: 2 },
  { arbitrary: fc.constantFrom(1, 5, 5, 10, 10, 25, 50, 100, 400, 1000).map((ms) => new Advance(ms)), weight: 8 },
  {
    arbitrary: fc.tuple(fc.constantFrom<"shutdown" | "scope">("shutdown", "scope"), fc.nat({ max: 2 })).map(([via, n]) =>
      new Shutdown(via, n === 0)
    ),
    weight: 1
  },
  { arbitrary: fc.constantFrom(...paths).map((path) => new PoisonSpawn(path)), weight: 1 },
  { arbitrary: fc.constantFrom(...paths).map((path) => new ArmLastWords(path)), weight: 2 },
  {
    arbitrary: fc.tuple(childArb, fc.constantFrom(70, 140)).map(([c, count]) => new Churn(c, count)),
    weight: 1
  }
)
