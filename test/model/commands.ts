/**
 * The commands of a generated history, each applied to the model and to the
 * real dispatcher side by side, then compared (see compare.ts).
 */
import fc from "fast-check"
import { compareAll, expectEqual } from "./compare.js"
import { type Config, type EndHow, type Entry, type Model, type Request, showOutcome } from "./model.js"
import type { Real } from "./real.js"

export type Cmd = fc.AsyncCommand<Model, Real>

const pick = (model: Model, n: number): Entry | undefined => {
  const live = model.liveCtl()
  return live.length === 0 ? undefined : live[n % live.length]
}

const newId = (model: Model) => model.nextId()

export class Send implements Cmd {
  /** `afterStop`: also sent once the root is stopping (most sends are only tried while it runs) */
  constructor(readonly spec: Omit<Request, "id">, readonly afterStop: boolean) {}
  check(model: Readonly<Model>): boolean {
    return this.afterStop || model.rootRunning
  }
  async run(model: Model, real: Real): Promise<void> {
    const req: Request = { id: newId(model), ...this.spec }
    const expected = model.send(req)
    const refused = await real.send(req)
    if (req.mode === "send") {
      expectEqual(
        model,
        `send #${req.id}: refused at once`,
        refused === undefined ? "accepted" : showOutcome(refused),
        expected === undefined ? "accepted" : showOutcome(expected)
      )
    }
    await compareAll(model, real, `after ${this}`)
  }
  toString(): string {
    const s = this.spec
    const flags = `${s.badRoot ? " badRoot" : ""}${s.badInner ? " badInner" : ""}`
    return `${s.mode}(${s.root}${s.root === "g" ? `/${s.inner}` : ""}${s.work > 0 ? ` work=${s.work}` : ""}${flags})`
  }
}

export class Take implements Cmd {
  constructor(readonly child: number, readonly n: number) {}
  check(model: Readonly<Model>): boolean {
    return pick(model as Model, this.child) !== undefined
  }
  async run(model: Model, real: Real): Promise<void> {
    const path = pick(model, this.child)!.path
    const expected = model.take(path, this.n)
    const taken = await real.take(path, this.n)
    expectEqual(model, `${path} takes ${this.n}`, taken, expected)
    await compareAll(model, real, `after ${this} at ${path}`)
  }
  toString(): string {
    return `take(child#${this.child}, ${this.n})`
  }
}

export class Reply implements Cmd {
  constructor(readonly child: number, readonly index: number, readonly ok: boolean) {}
  check(model: Readonly<Model>): boolean {
    const entry = pick(model as Model, this.child)
    return entry !== undefined && (model as Model).heldOf(entry).length > 0
  }
  async run(model: Model, real: Real): Promise<void> {
    const path = pick(model, this.child)!.path
    const expected = model.reply(path, this.index, this.ok)
    const replied = await real.reply(path, this.index, this.ok)
    expectEqual(model, `${path} replies (first answer wins)`, replied, expected)
    await compareAll(model, real, `after ${this} at ${path}`)
  }
  toString(): string {
    return `reply(child#${this.child}, held#${this.index}, ${this.ok ? "succeed" : "fail"})`
  }
}

export class End implements Cmd {
  constructor(readonly child: number, readonly how: EndHow) {}
  check(model: Readonly<Model>): boolean {
    return pick(model as Model, this.child) !== undefined
  }
  async run(model: Model, real: Real): Promise<void> {
    const path = pick(model, this.child)!.path
    model.end(path, this.how)
    await real.end(path, this.how)
    await compareAll(model, real, `after ${this} at ${path}`)
  }
  toString(): string {
    return `end(child#${this.child}, ${this.how})`
  }
}

export class InterruptServe implements Cmd {
  constructor(readonly child: number) {}
  check(model: Readonly<Model>): boolean {
    return (model as Model).liveServe().length > 0
  }
  async run(model: Model, real: Real): Promise<void> {
    const live = model.liveServe()
    const path = live[this.child % live.length]!.path
    model.interruptServe(path)
    await real.interruptServe(path)
    await compareAll(model, real, `after ${this} at ${path}`)
  }
  toString(): string {
    return `interruptServe(serve#${this.child})`
  }
}

/**
 * A child that keeps failing: it ends by failure or defect, time passes past
 * its restart delay, and its successor does the same, `times` times (or until
 * the key is forgotten or given up). Reaches the default schedule's give-up.
 */
export class CrashLoop implements Cmd {
  constructor(readonly child: number, readonly times: number, readonly how: "fail" | "die") {}
  check(model: Readonly<Model>): boolean {
    return pick(model as Model, this.child) !== undefined
  }
  async run(model: Model, real: Real): Promise<void> {
    const path = pick(model, this.child)!.path
    for (let i = 0; i < this.times; i++) {
      if (model.ctlAt(path) === undefined) break
      model.end(path, this.how)
      await real.end(path, this.how)
      await compareAll(model, real, `after ${this} at ${path}, crash ${i + 1}`)
      // just long enough for the successor to start
      const entry = model.levels().flatMap((level) => [...level.entries.values()]).find((e) => e.path === path)
      if (entry === undefined || entry.phase !== "restarting") break
      const delay = entry.restartAt - model.now
      model.advance(delay)
      await real.advance(delay)
      await compareAll(model, real, `after ${this} at ${path}, ${delay} ms after crash ${i + 1}`)
    }
  }
  toString(): string {
    return `crashLoop(child#${this.child}, ${this.times}x ${this.how})`
  }
}

export class Advance implements Cmd {
  constructor(readonly millis: number) {}
  check(): boolean {
    return true
  }
  async run(model: Model, real: Real): Promise<void> {
    model.advance(this.millis)
    await real.advance(this.millis)
    await compareAll(model, real, `after ${this}`)
  }
  toString(): string {
    return `advance(${this.millis} ms)`
  }
}

export class Shutdown implements Cmd {
  /** `again`: also once the stop has begun (it is idempotent) */
  constructor(readonly via: "shutdown" | "scope", readonly again: boolean) {}
  check(model: Readonly<Model>): boolean {
    return model.rootRunning || this.again
  }
  async run(model: Model, real: Real): Promise<void> {
    model.shutdown()
    await real.shutdown(this.via)
    await compareAll(model, real, `after ${this}`)
  }
  toString(): string {
    return `shutdown(via ${this.via})`
  }
}

const paths = ["a", "b", "s", "t", "g", "g/x", "g/y", "g/s", "g/t"]

/** The next child to end at a path sends a request for its own key from a finalizer, racing its own disposal (DESIGN 3). */
export class ArmLastWords implements Cmd {
  constructor(readonly path: string) {}
  check(model: Readonly<Model>): boolean {
    return model.armed === undefined
  }
  async run(model: Model, real: Real): Promise<void> {
    model.arm(this.path)
    real.armed = this.path
    await compareAll(model, real, `after ${this}`)
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
  async run(model: Model, real: Real): Promise<void> {
    model.poison(this.path)
    real.poisoned.add(this.path)
    await compareAll(model, real, `after ${this}`)
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
export class Churn implements Cmd {
  constructor(readonly child: number, readonly count: number) {}
  check(model: Readonly<Model>): boolean {
    return model.rootRunning && pick(model as Model, this.child) !== undefined
  }
  async run(model: Model, real: Real): Promise<void> {
    const path = pick(model, this.child)!.path
    const [root, inner] = path.includes("/") ? ["g", path.slice(2)] : [path, "x"]
    for (let i = 0; i < this.count && model.ctlAt(path) !== undefined; i++) {
      const req: Request = { id: newId(model), root: root!, inner: inner!, work: 0, badRoot: false, badInner: false, mode: "send" }
      const expected = model.send(req)
      const refused = await real.send(req)
      expectEqual(model, `churn send #${req.id}`, refused && showOutcome(refused), expected && showOutcome(expected))
      const taken = await real.take(path, 1)
      expectEqual(model, `churn: ${path} takes`, taken, model.take(path, 1))
      if (i % 3 !== 0 && taken.length > 0) {
        const held = model.heldOf(model.ctlAt(path)!).length
        expectEqual(model, `churn: ${path} replies`, await real.reply(path, held - 1, true), model.reply(path, held - 1, true))
      }
    }
    await compareAll(model, real, `after ${this} at ${path}`)
  }
  toString(): string {
    return `churn(child#${this.child}, ${this.count})`
  }
}

// -----------------------------------------------------------------------------
// Arbitraries
// -----------------------------------------------------------------------------

export const configArb: fc.Arbitrary<Config> = fc.record({
  rootCapacity: fc.integer({ min: 1, max: 3 }),
  innerCapacity: fc.integer({ min: 1, max: 2 }),
  rootTimeout: fc.option(fc.constantFrom(40, 100, 250), { nil: undefined, freq: 2 }),
  innerTimeout: fc.option(fc.constantFrom(30, 100), { nil: undefined, freq: 1 }),
  restart: fc.constantFrom<Config["restart"]>("short", "short", "default"),
  idleTimeToLive: fc.option(fc.constantFrom(20, 60), { nil: undefined, freq: 2 })
})

const sendArb: fc.Arbitrary<Cmd> = fc.record({
  root: fc.constantFrom("a", "a", "b", "s", "t", "g", "g", "g"),
  inner: fc.constantFrom("x", "x", "y", "s", "t"),
  // 30 and 40 meet the 30 and 40 ms timeouts: a handler done exactly at its deadline
  work: fc.constantFrom(0, 0, 10, 25, 30, 40),
  badRoot: fc.integer({ min: 0, max: 24 }).map((n) => n === 0),
  badInner: fc.integer({ min: 0, max: 15 }).map((n) => n === 0),
  mode: fc.constantFrom<"send" | "call">("send", "call"),
  afterStop: fc.integer({ min: 0, max: 4 }).map((n) => n === 0)
}).map(({ afterStop, ...spec }) => new Send(spec, afterStop))

const childArb = fc.nat({ max: 7 })

/** One arbitrary over every command, weighted. */
export const commandArb: fc.Arbitrary<Cmd> = fc.oneof(
  { arbitrary: sendArb, weight: 14 },
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
