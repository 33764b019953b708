/**
 * The real dispatcher under test, driven deterministically: a root made with
 * `Dispatcher.make`, controlled children the test tells when to take, answer
 * and end, `serve` children, and a second level through `Dispatcher.runChild`.
 * Time is a TestClock; between two commands `settle` lets every fiber run
 * until all are suspended (see scheduler.ts).
 *
 * Everything observable is recorded here (answers, deliveries, spawns,
 * finalizers, fibers) for the model-based test to compare with the model.
 */
import {
  Cause,
  Context,
  Deferred,
  Effect,
  Exit,
  type Fiber,
  Layer,
  Metric,
  Queue,
  References,
  Schedule,
  Scheduler,
  Scope
} from "effect"
import { TestClock } from "effect/testing"
import { Dispatcher } from "effect-dispatcher"
import {
  type Config,
  ctlError,
  ctlValue,
  downKey,
  type EndHow,
  innerKinds,
  type Kind,
  leafKinds,
  type Outcome,
  type Request,
  requestFor,
  rootKinds,
  servedValue
} from "./model.js"
import { QuiescentScheduler, settleWith } from "./scheduler.js"

type Env = Dispatcher.Envelope<Request, string, string>
type Spec = Dispatcher.ChildSpec<Request, string, string>

/** A controlled child: the test takes, answers and ends for it. */
export interface CtlHandle {
  readonly path: string
  readonly instance: number
  readonly spec: Spec
  readonly fiber: Fiber.Fiber<unknown, unknown>
  readonly stop: Deferred.Deferred<void, string>
  readonly held: Array<Env>
}

type Answer = Deferred.Deferred<string, string | Dispatcher.DispatchError>

export interface RealRequest {
  readonly req: Request
  /** `send` mode: the fiber running `send` (it may wait for room, with `overflow: { wait }`) */
  send: Fiber.Fiber<Answer, unknown> | undefined
  /** `call` mode: the fiber running `call` */
  call: Fiber.Fiber<string, unknown> | undefined
}

/** What `send` gave so far: nothing yet (it waits for room), or its exit. */
export const sentOf = (record: RealRequest): Exit.Exit<Answer, unknown> | undefined => record.send?.pollUnsafe()

const restartSchedules: Record<Config["restart"], Schedule.Schedule<unknown, unknown> | undefined> = {
  default: undefined,
  short: Schedule.spaced("5 millis").pipe(Schedule.upTo({ times: 2 }))
}

/** A dispatcher's answer (or refusal), in the model's vocabulary. */
export const outcomeOf = (exit: Exit.Exit<unknown, unknown>): Outcome => {
  if (Exit.isSuccess(exit)) return { _tag: "Success", value: String(exit.value) }
  const cause = exit.cause
  if (Cause.hasDies(cause)) return { _tag: "Die" }
  if (Cause.hasInterruptsOnly(cause)) return { _tag: "Interrupted" }
  const error = Cause.squash(cause)
  if (typeof error === "string") return { _tag: "Fail", error }
  if (error instanceof Dispatcher.TooManyRequests) {
    return error.limit === "maxChildren"
      ? { _tag: "TooManyRequests", key: error.key, capacity: error.capacity, limit: "maxChildren" }
      : { _tag: "TooManyRequests", key: error.key, capacity: error.capacity }
  }
  if (error instanceof Dispatcher.Unavailable) return { _tag: "Unavailable", key: error.key }
  if (error instanceof Dispatcher.RequestTimeout) return { _tag: "RequestTimeout", key: error.key }
  if (error instanceof Dispatcher.ChildFailed) {
    const inner = error.cause as Cause.Cause<unknown>
    return { _tag: "ChildFailed", key: error.key, cause: Cause.hasDies(inner) ? "die" : "fail" }
  }
  return { _tag: "Fail", error: `unexpected: ${String(error)}` }
}

export class Real {
  readonly scheduler = new QuiescentScheduler()
  readonly settle = settleWith(this.scheduler)
  private context!: Context.Context<never>
  private clockScope!: Scope.Closeable
  /** the Scope the root was made in; closing it stops the root */
  rootScope!: Scope.Closeable
  dispatcher!: Dispatcher.Dispatcher<Request, string, string>

  readonly requests = new Map<number, RealRequest>()
  /** live controlled children by path */
  readonly ctl = new Map<string, CtlHandle>()
  /** live `serve` children's fibers by path */
  readonly serving = new Map<string, { readonly instance: number; readonly fiber: Fiber.Fiber<unknown, unknown> }>()
  /** children whose spawn body runs and whose Scope has not closed, by path */
  readonly live = new Map<string, number>()
  readonly spawns = new Map<string, number>()
  readonly delivered = new Map<string, Array<number>>()
  /** finalizer runs per child instance */
  readonly finalized = new Map<number, number>()
  readonly violations: Array<string> = []
  readonly mailboxes = new Set<Queue.Dequeue<Env, Cause.Done>>()
  /** fibers started and ended in the dispatcher's context (the runtime's metrics hook) */
  readonly fibers = { started: 0, ended: 0 }
  private instances = 0
  /** a path whose next child's finalizer sends a request for its own key */
  armed: string | undefined = undefined
  /** paths whose next spawn throws while building its effect */
  readonly poisoned = new Set<string>()
  readonly shutdownFibers: Array<Fiber.Fiber<void>> = []
  closeFiber: Fiber.Fiber<void> | undefined = undefined
  /** what the root's enclosing Scope finalizer (added before `make`) saw when it ran */
  rootFinalizer: { readonly liveChildren: number; readonly unanswered: Array<number> } | undefined = undefined

  constructor(readonly config: Config) {}

  /** Run an effect in this history's runtime (its TestClock and scheduler). */
  run<A, E>(effect: Effect.Effect<A, E, any>): Promise<A> {
    return Effect.runPromiseWith(this.context)(effect as Effect.Effect<A, E, never>)
  }

  /** Fork an effect in this history's runtime, detached from the driver. */
  fork<A, E>(effect: Effect.Effect<A, E, any>): Fiber.Fiber<A, E> {
    return Effect.runForkWith(this.context)(effect as Effect.Effect<A, E, never>)
  }

  async setup(): Promise<void> {
    this.clockScope = Effect.runSync(Scope.make())
    const clock = await Effect.runPromise(
      // the clock stops waiting for a woken fiber after `warningDelay` of real time: never, on a loaded machine
      Layer.buildWithScope(TestClock.layer({ warningDelay: "1 hour" }), this.clockScope).pipe(
        Effect.provideService(Scheduler.Scheduler, this.scheduler)
      )
    )
    // failing children are logged with their Cause (DESIGN 8): not here
    this.context = Context.add(clock, References.MinimumLogLevel, "None") as Context.Context<never>
    const self = this
    const tracker: Metric.FiberRuntimeMetricsService = {
      recordFiberStart: () => {
        self.fibers.started++
      },
      recordFiberEnd: () => {
        self.fibers.ended++
      }
    }
    await this.run(Effect.gen(function*() {
      // the clock's "time is not advancing" warning forks a fiber on the first sleep until the first adjust
      yield* TestClock.adjust(0)
      self.rootScope = yield* Scope.make()
      // an enclosing finalizer added before `make`: it must run after every child ended and every leftover was answered
      yield* Scope.addFinalizer(
        self.rootScope,
        Effect.sync(() => {
          self.rootFinalizer = { liveChildren: self.liveCount(), unanswered: self.unanswered() }
        })
      )
      const c = self.config
      self.dispatcher = yield* Dispatcher.make(
        self.factory("root"),
        self.levelOptions("root", c.rootCapacity, c.rootTimeout, c.rootMaxChildren, c.rootOverflowWait)
      ).pipe(
        Scope.provide(self.rootScope),
        Effect.provideService(Metric.FiberRuntimeMetrics, tracker)
      )
    }))
  }

  async teardown(): Promise<void> {
    await Effect.runPromise(Scope.close(this.clockScope, Exit.void))
  }

  // ---------------------------------------------------------------------------
  // Factories
  // ---------------------------------------------------------------------------

  /** The root's children, those of the downstream dispatcher under "g" (paths `g/<key>`), or of the one under "g/h". */
  private factory(level: "root" | "inner" | "leaf"): Dispatcher.Factory<Request, string, string> {
    const [prefix, kinds] = level === "root"
      ? ["", rootKinds]
      : level === "inner"
      ? [`${downKey}/`, innerKinds]
      : [`${downKey}/h/`, leafKinds]
    return {
      keyOf: (r) => {
        if (level === "root" ? r.badRoot : level === "inner" && r.badInner) {
          throw new Error(`keyOf: no ${level} key for #${r.id}`)
        }
        return level === "root" ? r.root : level === "inner" ? r.inner : r.leaf
      },
      spawn: (spec) => {
        if (this.poisoned.delete(prefix + spec.key)) throw new Error(`spawn: cannot build ${prefix}${spec.key}`)
        return this.child(prefix, spec, kinds[spec.key]!)
      }
    }
  }

  /** A level's options as the history's configuration says (an option left `undefined` is off). */
  private levelOptions(
    name: string,
    capacity: number,
    timeout: number | undefined,
    maxChildren: number | undefined,
    overflowWait: number | undefined
  ): Dispatcher.Options {
    const restart = restartSchedules[this.config.restart]
    return {
      name,
      mailboxCapacity: capacity,
      ...(timeout === undefined ? {} : { requestTimeout: timeout }),
      ...(restart === undefined ? {} : { restart }),
      ...(maxChildren === undefined ? {} : { maxChildren }),
      ...(overflowWait === undefined ? {} : { overflow: { wait: overflowWait } })
    }
  }

  private child(prefix: string, spec: Spec, kind: Kind): Effect.Effect<void, unknown, Scope.Scope> {
    const self = this
    return Effect.gen(function*() {
      const path = prefix + spec.key
      const instance = ++self.instances
      self.spawns.set(path, (self.spawns.get(path) ?? 0) + 1)
      const live = (self.live.get(path) ?? 0) + 1
      self.live.set(path, live)
      if (live > 1) self.violations.push(`two live children for ${path} (instance ${instance})`)
      self.mailboxes.add(spec.requests as Queue.Dequeue<Env, Cause.Done>)
      self.finalized.set(instance, 0)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          self.live.set(path, self.live.get(path)! - 1)
          self.finalized.set(instance, self.finalized.get(instance)! + 1)
          if (self.ctl.get(path)?.instance === instance) self.ctl.delete(path)
          if (self.serving.get(path)?.instance === instance) self.serving.delete(path)
        })
      )
      // registered last, so it runs first: as the child ends, a request for its own key races its disposal
      yield* Effect.addFinalizer(() => self.armed === path ? self.lastWords(path) : Effect.void)
      switch (kind) {
        case "ctl": {
          const fiber = yield* Effect.fiber
          const stop = yield* Deferred.make<void, string>()
          self.ctl.set(path, { path, instance, spec, fiber, stop, held: [] })
          return yield* Deferred.await(stop)
        }
        case "serve":
          self.serving.set(path, { instance, fiber: yield* Effect.fiber })
          return yield* Dispatcher.serve(
            spec,
            (r) =>
              Effect.suspend(() => {
                self.deliver(path, r.id)
                const answer = Effect.succeed(servedValue(r.id))
                return r.work > 0 ? Effect.andThen(Effect.sleep(r.work), answer) : answer
              }),
            {
              ...(self.config.idleTimeToLive === undefined ? {} : { idleTimeToLive: self.config.idleTimeToLive }),
              ...(spec.key === "t" ? { onStop: self.config.tOnStop } : {})
            }
          )
        case "down": {
          const c = self.config
          return yield* prefix === ""
            ? Dispatcher.runChild(
              spec,
              self.factory("inner"),
              self.levelOptions("inner", c.innerCapacity, c.innerTimeout, c.innerMaxChildren, c.innerOverflowWait)
            )
            : Dispatcher.runChild(
              spec,
              self.factory("leaf"),
              self.levelOptions("leaf", c.leafCapacity, undefined, c.leafMaxChildren, undefined)
            )
        }
      }
    })
  }

  private lastWords(path: string): Effect.Effect<void> {
    this.armed = undefined
    const req = requestFor(path, this.requests.size + 1)
    const record: RealRequest = { req, send: undefined, call: undefined }
    this.requests.set(req.id, record)
    // in a fiber of its own: with `overflow: { wait }` it may wait for room, and the finalizer goes on
    return Effect.sync(() => {
      record.send = this.fork(Dispatcher.send(this.dispatcher, req))
    })
  }

  private deliver(path: string, id: number): void {
    const list = this.delivered.get(path) ?? []
    list.push(id)
    this.delivered.set(path, list)
  }

  // ---------------------------------------------------------------------------
  // Commands
  // ---------------------------------------------------------------------------

  /**
   * Send (or call) a request, in a fiber of its own started at once (the send
   * happens now; it may wait for room). What `send` did by the end of the step.
   */
  async send(req: Request): Promise<Outcome | "accepted" | "waiting"> {
    const record: RealRequest = { req, send: undefined, call: undefined }
    this.requests.set(req.id, record)
    if (req.mode === "call") record.call = this.fork(Dispatcher.call(this.dispatcher, req))
    else record.send = this.fork(Dispatcher.send(this.dispatcher, req))
    await this.run(this.settle)
    return this.sendStatus(req.id)
  }

  /** A send in a burst: started now, nothing settled. */
  sendNow(req: Request): void {
    const record: RealRequest = { req, send: undefined, call: undefined }
    this.requests.set(req.id, record)
    if (req.mode === "call") record.call = this.fork(Dispatcher.call(this.dispatcher, req))
    else record.send = this.fork(Dispatcher.send(this.dispatcher, req))
  }

  /** A controlled child takes up to `n` requests in a burst: now, nothing settled. */
  takeNow(path: string, n: number): Array<number> {
    const handle = this.ctl.get(path)
    if (handle === undefined) throw new Error(`no live controlled child at ${path}`)
    const taken: Array<number> = []
    for (let i = 0; i < n; i++) {
      const next = Queue.takeUnsafe(handle.spec.requests)
      if (next === undefined || Exit.isFailure(next)) break
      handle.held.push(next.value)
      this.deliver(path, next.value.request.id)
      taken.push(next.value.request.id)
    }
    return taken
  }

  /** A controlled child ends in a burst: now, nothing settled. */
  endNow(path: string, how: EndHow): void {
    const handle = this.ctl.get(path)
    if (handle === undefined) throw new Error(`no live controlled child at ${path}`)
    if (how === "interrupt") return handle.fiber.interruptUnsafe()
    Deferred.doneUnsafe(
      handle.stop,
      how === "success" ? Exit.void : how === "fail" ? Exit.fail("boom") : Exit.die(new Error("kaput"))
    )
  }

  /** A `send`'s state: still waiting for room, or what it gave (a `call`'s is "accepted" unless answered). */
  sendStatus(id: number): Outcome | "accepted" | "waiting" {
    const record = this.requests.get(id)!
    if (record.call !== undefined) return "accepted"
    const sent = sentOf(record)
    return sent === undefined ? "waiting" : Exit.isFailure(sent) ? outcomeOf(sent) : "accepted"
  }

  /** The caller of a `call` is interrupted while it waits. */
  async interruptCall(id: number): Promise<void> {
    const call = this.requests.get(id)?.call
    if (call === undefined) throw new Error(`#${id} is not a call`)
    call.interruptUnsafe()
    await this.run(this.settle)
  }

  /** A controlled child takes up to `n` requests (without waiting). */
  async take(path: string, n: number): Promise<Array<number>> {
    const taken = this.takeNow(path, n)
    await this.run(this.settle)
    return taken
  }

  /** A controlled child answers the `index`-th request it took; what `reply` returned. */
  async reply(path: string, index: number, ok: boolean): Promise<{ readonly id: number; readonly replied: boolean }> {
    const handle = this.ctl.get(path)
    if (handle === undefined) throw new Error(`no live controlled child at ${path}`)
    const envelope = handle.held[index % handle.held.length]!
    const id = envelope.request.id
    const self = this
    return this.run(Effect.gen(function*() {
      const replied = ok ? yield* envelope.succeed(ctlValue(id)) : yield* envelope.fail(ctlError(id))
      yield* self.settle
      return { id, replied }
    }))
  }

  /** A controlled child ends: success, failure, defect, or interrupted from outside. */
  async end(path: string, how: EndHow): Promise<void> {
    const handle = this.ctl.get(path)
    if (handle === undefined) throw new Error(`no live controlled child at ${path}`)
    const self = this
    await this.run(Effect.gen(function*() {
      switch (how) {
        case "success":
          yield* Deferred.done(handle.stop, Exit.void)
          break
        case "fail":
          yield* Deferred.done(handle.stop, Exit.fail("boom"))
          break
        case "die":
          yield* Deferred.done(handle.stop, Exit.die(new Error("kaput")))
          break
        case "interrupt":
          handle.fiber.interruptUnsafe()
          break
      }
      yield* self.settle
    }))
  }

  /** A `serve` child is interrupted from outside. */
  async interruptServe(path: string): Promise<void> {
    const serving = this.serving.get(path)
    if (serving === undefined) throw new Error(`no live serve child at ${path}`)
    serving.fiber.interruptUnsafe()
    await this.run(this.settle)
  }

  /** Stop the root: `Dispatcher.shutdown`, or closing its Scope. */
  async shutdown(via: "shutdown" | "scope"): Promise<void> {
    if (via === "shutdown") this.shutdownFibers.push(this.fork(Dispatcher.shutdown(this.dispatcher)))
    else this.closeFiber ??= this.fork(Scope.close(this.rootScope, Exit.void))
    await this.run(this.settle)
  }

  async advance(millis: number): Promise<void> {
    await this.run(Effect.andThen(TestClock.adjust(millis), this.settle))
  }

  // ---------------------------------------------------------------------------
  // Observations
  // ---------------------------------------------------------------------------

  /** The request's answer so far, if any. */
  answerOf(id: number): Outcome | undefined {
    const record = this.requests.get(id)
    if (record === undefined) return undefined
    if (record.call !== undefined) {
      const exit = record.call.pollUnsafe()
      return exit === undefined ? undefined : outcomeOf(exit)
    }
    const sent = sentOf(record)
    if (sent === undefined) return undefined
    if (Exit.isFailure(sent)) return outcomeOf(sent)
    const done = sent.value.effect
    if (done === undefined) return undefined
    if (!Exit.isExit(done)) throw new Error(`request #${id} was completed with an effect, not an Exit`)
    return outcomeOf(done)
  }

  liveCount(): number {
    let n = 0
    for (const count of this.live.values()) n += count
    return n
  }

  /** Requests accepted and not answered yet (a `call`'s answer is seen as its caller resumes). */
  unanswered(): Array<number> {
    const out: Array<number> = []
    for (const [id, record] of this.requests) {
      const sent = sentOf(record)
      const accepted = record.call !== undefined || (sent !== undefined && Exit.isSuccess(sent))
      if (accepted && this.answerOf(id) === undefined) out.push(id)
    }
    return out
  }

  liveChildren(): Map<string, number> {
    const out = new Map<string, number>()
    for (const [path, count] of this.live) if (count > 0) out.set(path, count)
    return out
  }

  rootChildren(): Promise<ReadonlyArray<Dispatcher.ChildInfo>> {
    return this.run(Dispatcher.children(this.dispatcher))
  }

  stats(): Promise<Dispatcher.Stats> {
    return this.run(Dispatcher.stats(this.dispatcher))
  }

  tree(): Promise<Dispatcher.Tree> {
    return this.run(Dispatcher.tree(this.dispatcher))
  }
}
