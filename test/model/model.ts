/**
 * A reference model of DESIGN.md's semantics, written from the contract and
 * independent of the implementation: plain TypeScript, no Effect, no fibers.
 *
 * It runs a two-level tree: a root dispatcher whose keys are served by
 * controlled children ("a", "b"), `serve` children ("s", "t") and a downstream
 * dispatcher (`runChild`, "g") whose own keys are controlled children ("x",
 * "y") and `serve` children ("s", "t"). For any sequence of commands it says what
 * each request's answer must be, or the set of answers allowed where the
 * order of two things due at the same instant may decide.
 *
 * Time is discrete (TestClock millis). Between two commands the real system
 * is at rest, so every command is one atomic step of the model; `advance`
 * walks the timed events (deadlines, restart delays, handlers, idle ends) in
 * order.
 */

// -----------------------------------------------------------------------------
// Vocabulary
// -----------------------------------------------------------------------------

export type Kind = "ctl" | "serve" | "down"

/** Root keys and what serves them. */
export const rootKinds: Readonly<Record<string, Kind>> = { a: "ctl", b: "ctl", s: "serve", t: "serve", g: "down" }
/** Keys of the downstream dispatcher under root key "g". */
export const innerKinds: Readonly<Record<string, Kind>> = { x: "ctl", y: "ctl", s: "serve", t: "serve" }
export const downKey = "g"

export type RestartPolicy = "default" | "short"

/**
 * The delays of each restart schedule, one per consecutive failure; the
 * failure after the last delay gives up. "default" is DESIGN's default
 * (exponential from 10 ms, capped at 1 s, the tenth failure gives up);
 * "short" is `Schedule.spaced("5 millis").pipe(Schedule.upTo({ times: 2 }))`.
 */
export const restartDelays: Readonly<Record<RestartPolicy, ReadonlyArray<number>>> = {
  default: [10, 20, 40, 80, 160, 320, 640, 1000, 1000],
  short: [5, 5]
}

export interface Config {
  readonly rootCapacity: number
  readonly innerCapacity: number
  /** root `requestTimeout` in millis */
  readonly rootTimeout: number | undefined
  /** the downstream dispatcher's own `requestTimeout` */
  readonly innerTimeout: number | undefined
  readonly restart: RestartPolicy
  /** `serve`'s `idleTimeToLive` for both "s" children */
  readonly idleTimeToLive: number | undefined
}

export interface Request {
  readonly id: number
  readonly root: string
  readonly inner: string
  /** millis the `serve` handler works on it */
  readonly work: number
  /** the root `keyOf` throws for it */
  readonly badRoot: boolean
  /** the downstream `keyOf` throws for it */
  readonly badInner: boolean
  readonly mode: "send" | "call"
}

export type CauseKind = "fail" | "die"

export type Outcome =
  | { readonly _tag: "Success"; readonly value: string }
  | { readonly _tag: "Fail"; readonly error: string }
  | { readonly _tag: "TooManyRequests"; readonly key: string; readonly capacity: number }
  | { readonly _tag: "Unavailable"; readonly key: string }
  | { readonly _tag: "RequestTimeout"; readonly key: string }
  | { readonly _tag: "ChildFailed"; readonly key: string; readonly cause: CauseKind }
  | { readonly _tag: "Die" }
  | { readonly _tag: "Interrupted" }

export const showOutcome = (o: Outcome): string => {
  switch (o._tag) {
    case "Success":
      return `Success(${o.value})`
    case "Fail":
      return `Fail(${o.error})`
    case "TooManyRequests":
      return `TooManyRequests(${o.key}, ${o.capacity})`
    case "Unavailable":
    case "RequestTimeout":
      return `${o._tag}(${o.key})`
    case "ChildFailed":
      return `ChildFailed(${o.key}, ${o.cause})`
    default:
      return o._tag
  }
}

export const sameOutcome = (a: Outcome, b: Outcome): boolean => showOutcome(a) === showOutcome(b)

/** What a controlled child's success and failure answers, and the serve handler's answer, are. */
export const ctlValue = (id: number) => `took:${id}`
export const ctlError = (id: number) => `err:${id}`
export const servedValue = (id: number) => `served:${id}`

export type EndHow = "success" | "fail" | "die" | "interrupt"

// -----------------------------------------------------------------------------
// State
// -----------------------------------------------------------------------------

export interface RequestState {
  readonly req: Request
  /** accepted by the root (its `send` succeeded) */
  accepted: boolean
  /** the answers allowed, once answered */
  answer: Array<Outcome> | undefined
  /** the deadline in force, and the key of the dispatcher whose timer owns it */
  deadline: number
  deadlineKey: string
  /** the path of the child it was delivered to (taken by a controlled child, or handed to a handler) */
  deliveredTo: string | undefined
}

interface CtlChild {
  readonly tag: "ctl"
  /** requests this incarnation took, in order (answered or not) */
  readonly held: Array<number>
}

interface ServeChild {
  readonly tag: "serve"
  /** what its last `takeAll` returned and it has not reached yet */
  batch: Array<number>
  /** the request its handler works on */
  busy: { readonly id: number; readonly finish: number; readonly outcomes: Array<Outcome> } | undefined
  /** waiting for a request; ends at `idleAt` (Infinity without idleTimeToLive) */
  waiting: boolean
  idleAt: number
}

interface DownChild {
  readonly tag: "down"
  readonly level: Level
}

type Child = CtlChild | ServeChild | DownChild

export class Entry {
  mailbox: Array<number> = []
  /** the mailbox has ended (a stop) */
  ended = false
  incarnation = 0
  phase: "active" | "restarting" = "active"
  restartAt = Infinity
  failures = 0
  lastCause: CauseKind | undefined = undefined
  child: Child | undefined = undefined
  constructor(readonly level: Level, readonly key: string, readonly kind: Kind) {}
  get path(): string {
    return this.level.prefix + this.key
  }
}

export class Level {
  state: "running" | "stopping" | "stopped" = "running"
  readonly entries = new Map<string, Entry>()
  /** mailboxes of children that ended during the stop, answered Unavailable once all have ended */
  readonly leftovers: Array<{ readonly key: string; readonly mailbox: Array<number> }> = []
  /** children alive, restart delays included */
  live = 0
  constructor(
    readonly prefix: string,
    readonly kinds: Readonly<Record<string, Kind>>,
    readonly capacity: number,
    readonly timeout: number | undefined,
    /** the root entry whose child this downstream dispatcher is */
    readonly parent: Entry | undefined
  ) {}
}

export interface RootChildInfo {
  readonly key: string
  readonly mailboxSize: number
  readonly incarnation: number
}

export class Model {
  now = 0
  readonly root: Level
  readonly requests = new Map<number, RequestState>()
  /** spawn bodies started, per path */
  readonly spawns = new Map<string, number>()
  /** requests delivered, per path, in order */
  readonly delivered = new Map<string, Array<number>>()
  /** the root's own counters, as `Dispatcher.stats` reports them */
  readonly rootStats = { accepted: 0, spawned: 0, successors: 0, failures: 0 }
  /** what happened, for failure reports */
  readonly log: Array<string> = []
  /** a path whose next child's finalizer sends a request for its own key */
  armed: string | undefined = undefined
  /** paths whose next spawn throws while building its effect (DESIGN 9) */
  readonly poisoned = new Set<string>()
  /** how often each kind of thing happened, for the coverage summary (FC_STATS=1) */
  readonly coverage = new Map<string, number>()
  private readonly delays: ReadonlyArray<number>
  /** inside `advance`: what happens is due at `now`, as a deadline may be */
  private timed = false
  /**
   * Where the order of two timers due at the same instant changes more than an
   * answer, `advance` makes a choice: `choices[i]` is the i-th (false: the
   * default order), and `choicePoints` counts those met. `advanceAll` explores them.
   */
  choices: ReadonlyArray<boolean> = []
  choicePoints = 0

  constructor(readonly config: Config) {
    this.root = new Level("", rootKinds, config.rootCapacity, config.rootTimeout, undefined)
    this.delays = restartDelays[config.restart]
  }

  /** A deep copy, to explore another order of things due at the same instant. */
  clone(): Model {
    const copy = new Model(this.config)
    const arrays = new Map<Array<number>, Array<number>>()
    const array = (a: Array<number>) => {
      let c = arrays.get(a)
      if (c === undefined) arrays.set(a, c = [...a])
      return c
    }
    const cloneLevel = (level: Level, parent: Entry | undefined): Level => {
      const c = new Level(level.prefix, level.kinds, level.capacity, level.timeout, parent)
      c.state = level.state
      c.live = level.live
      for (const [key, entry] of level.entries) c.entries.set(key, cloneEntry(entry, c))
      for (const { key, mailbox } of level.leftovers) c.leftovers.push({ key, mailbox: array(mailbox) })
      return c
    }
    const cloneEntry = (entry: Entry, level: Level): Entry => {
      const c = new Entry(level, entry.key, entry.kind)
      c.mailbox = array(entry.mailbox)
      c.ended = entry.ended
      c.incarnation = entry.incarnation
      c.phase = entry.phase
      c.restartAt = entry.restartAt
      c.failures = entry.failures
      c.lastCause = entry.lastCause
      const child = entry.child
      c.child = child === undefined
        ? undefined
        : child.tag === "ctl"
        ? { tag: "ctl", held: [...child.held] }
        : child.tag === "serve"
        ? { ...child, batch: [...child.batch] }
        : { tag: "down", level: cloneLevel(child.level, c) }
      return c
    }
    const root = cloneLevel(this.root, undefined)
    Object.assign(copy, { now: this.now, root, armed: this.armed, timed: this.timed })
    for (const [id, state] of this.requests) copy.requests.set(id, { ...state })
    for (const [path, n] of this.spawns) copy.spawns.set(path, n)
    for (const [path, ids] of this.delivered) copy.delivered.set(path, [...ids])
    Object.assign(copy.rootStats, this.rootStats)
    copy.log.push(...this.log)
    for (const [what, n] of this.coverage) copy.coverage.set(what, n)
    for (const path of this.poisoned) copy.poisoned.add(path)
    return copy
  }

  /** Everything that decides what happens next, to tell two explored models apart. */
  fingerprint(): string {
    const level = (l: Level): unknown => ({
      s: l.state,
      l: l.live,
      o: l.leftovers.map((o) => [o.key, o.mailbox]),
      e: [...l.entries.values()].map((e) => [
        e.key,
        e.mailbox,
        e.ended,
        e.incarnation,
        e.phase,
        e.restartAt,
        e.failures,
        e.lastCause,
        e.child?.tag === "down" ? level(e.child.level) : e.child
      ])
    })
    const requests = [...this.requests.values()].map((r) => [r.accepted, r.answer?.map(showOutcome), r.deadline, r.deadlineKey])
    return JSON.stringify([this.now, level(this.root), requests, this.armed, [...this.poisoned], [...this.delivered]])
  }

  private choose(what: string): boolean {
    const choice = this.choices[this.choicePoints++] ?? false
    this.count(`order chosen at an instant: ${what}`)
    if (choice) this.log.push(`(explored order: ${what})`)
    return choice
  }

  private count(what: string): void {
    this.coverage.set(what, (this.coverage.get(what) ?? 0) + 1)
  }

  // ---------------------------------------------------------------------------
  // Queries
  // ---------------------------------------------------------------------------

  get rootStopped(): boolean {
    return this.root.state === "stopped"
  }

  get rootRunning(): boolean {
    return this.root.state === "running"
  }

  /** every level alive now: the root, then each live downstream dispatcher */
  levels(): Array<Level> {
    const out = [this.root]
    for (const entry of this.root.entries.values()) {
      if (entry.child?.tag === "down") out.push(entry.child.level)
    }
    return out
  }

  /** live children (spawn body running) by path, with their kind */
  liveChildren(): Map<string, Kind> {
    const out = new Map<string, Kind>()
    for (const level of this.levels()) {
      for (const entry of level.entries.values()) {
        if (entry.child !== undefined) out.set(entry.path, entry.kind)
      }
    }
    return out
  }

  /** live controlled children, the ones commands can act on, sorted by path */
  liveCtl(): Array<Entry> {
    const out: Array<Entry> = []
    for (const level of this.levels()) {
      for (const entry of level.entries.values()) {
        if (entry.child?.tag === "ctl") out.push(entry)
      }
    }
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  }

  /** live `serve` children, sorted by path */
  liveServe(): Array<Entry> {
    const out: Array<Entry> = []
    for (const level of this.levels()) {
      for (const entry of level.entries.values()) {
        if (entry.child?.tag === "serve") out.push(entry)
      }
    }
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  }

  ctlAt(path: string): Entry | undefined {
    return this.liveCtl().find((e) => e.path === path)
  }

  heldOf(entry: Entry): ReadonlyArray<number> {
    return entry.child?.tag === "ctl" ? entry.child.held : []
  }

  /** `Dispatcher.children` of the root: the keys served by a child now */
  rootChildren(): Array<RootChildInfo> {
    const out: Array<RootChildInfo> = []
    for (const entry of this.root.entries.values()) {
      // a key whose successor waits out a restart delay has no child now
      if (entry.phase === "restarting") continue
      out.push({ key: entry.key, mailboxSize: entry.mailbox.length, incarnation: entry.incarnation })
    }
    return out
  }

  isAnswered(id: number): boolean {
    return this.requests.get(id)?.answer !== undefined
  }

  // ---------------------------------------------------------------------------
  // Commands
  // ---------------------------------------------------------------------------

  /**
   * A request is sent. Returns the refusal if the root's `send` fails
   * (`undefined` when accepted).
   */
  send(req: Request): Outcome | undefined {
    const state: RequestState = {
      req,
      accepted: false,
      answer: undefined,
      deadline: Infinity,
      deadlineKey: req.root,
      deliveredTo: undefined
    }
    this.requests.set(req.id, state)
    const refuse = (o: Outcome) => {
      state.answer = [o]
      this.count(`refused at send ${o._tag}`)
      this.log.push(`#${req.id} refused ${showOutcome(o)}`)
      return o
    }
    if (req.badRoot) return refuse({ _tag: "Die" })
    const root = this.root
    if (root.state !== "running") return refuse({ _tag: "Unavailable", key: req.root })
    let entry = root.entries.get(req.root)
    if (entry !== undefined && entry.mailbox.length >= root.capacity) {
      return refuse({ _tag: "TooManyRequests", key: req.root, capacity: root.capacity })
    }
    state.accepted = true
    this.rootStats.accepted++
    if (root.timeout !== undefined) {
      state.deadline = this.now + root.timeout
      state.deadlineKey = req.root
    }
    this.log.push(`#${req.id} accepted by root/${req.root}`)
    if (entry === undefined) {
      entry = new Entry(root, req.root, root.kinds[req.root]!)
      root.entries.set(req.root, entry)
      entry.mailbox.push(req.id)
      this.spawn(entry, 0)
    } else {
      entry.mailbox.push(req.id)
      this.arrived(entry)
    }
    return undefined
  }

  /** The id the next request gets, in the model and in the real system alike: one more than those sent. */
  nextId(): number {
    return this.requests.size + 1
  }

  /** The next end of a child at `path` sends a request for its own key from a finalizer (a request racing that end). */
  arm(path: string): void {
    this.armed = path
    this.log.push(`${path}: its next end sends a request for its own key`)
  }

  /** A controlled child takes up to `n` requests from its mailbox. */
  take(path: string, n: number): Array<number> {
    const entry = this.ctlAt(path)!
    const taken = entry.mailbox.splice(0, n)
    for (const id of taken) {
      ;(entry.child as CtlChild).held.push(id)
      this.deliver(entry, id)
    }
    this.log.push(`${path} took [${taken.join(", ")}]`)
    return taken
  }

  /** A controlled child answers the `index`-th request it took. Returns what `reply` returns. */
  reply(path: string, index: number, ok: boolean): { readonly id: number; readonly replied: boolean } {
    const entry = this.ctlAt(path)!
    const held = (entry.child as CtlChild).held
    const id = held[index % held.length]!
    const state = this.requests.get(id)!
    if (state.answer !== undefined) {
      this.count("reply after an answer")
      this.log.push(`${path} answers #${id}: already answered`)
      return { id, replied: false }
    }
    this.answer(id, [ok ? { _tag: "Success", value: ctlValue(id) } : { _tag: "Fail", error: ctlError(id) }])
    // a successful answer starts the restart backoff over
    if (ok) entry.failures = 0
    return { id, replied: true }
  }

  /** A controlled child ends. */
  end(path: string, how: EndHow): void {
    const entry = this.ctlAt(path)!
    this.log.push(`${path} ends: ${how}`)
    this.childEnded(entry, how)
  }

  /**
   * A `serve` child is interrupted from outside: the request its handler works
   * on and the rest of its batch are answered Unavailable (DESIGN 10), and it
   * is handled like any interrupted child (a successor at once if requests wait).
   */
  interruptServe(path: string): void {
    const entry = this.liveServe().find((e) => e.path === path)!
    const child = entry.child as ServeChild
    this.log.push(`${path} (serve) interrupted`)
    const abandoned = [...(child.busy === undefined ? [] : [child.busy.id]), ...child.batch]
    child.busy = undefined
    child.batch = []
    child.waiting = false
    for (const id of abandoned) this.answer(id, [{ _tag: "Unavailable", key: entry.key }])
    this.childEnded(entry, "interrupt")
  }

  /** The next spawn for `path` throws while building its effect. */
  poison(path: string): void {
    this.poisoned.add(path)
    this.log.push(`${path}: its next spawn will throw`)
  }

  /** Root stop begins (`shutdown` or closing its Scope); idempotent. */
  shutdown(): void {
    this.log.push(this.rootRunning ? "root stop begins" : "root stop requested again")
    this.beginStop(this.root)
  }

  /** Time passes. */
  advance(millis: number): void {
    const target = this.now + millis
    for (let guard = 0; guard < 100_000; guard++) {
      const next = this.nextEvent()
      if (next > target) break
      this.now = next
      this.runDue()
    }
    this.now = target
  }

  // ---------------------------------------------------------------------------
  // Time
  // ---------------------------------------------------------------------------

  private nextEvent(): number {
    let next = Infinity
    for (const level of this.levels()) {
      for (const entry of level.entries.values()) {
        if (entry.phase === "restarting") next = Math.min(next, entry.restartAt)
        const child = entry.child
        if (child?.tag === "serve") {
          if (child.busy !== undefined) next = Math.min(next, child.busy.finish)
          if (child.waiting) next = Math.min(next, child.idleAt)
        }
      }
    }
    for (const state of this.requests.values()) {
      if (state.accepted && state.answer === undefined) next = Math.min(next, state.deadline)
    }
    return next
  }

  /**
   * Everything due now. Restarts and serve children go first, the deadline
   * timer last; anything answered at the instant of its own deadline also
   * allows RequestTimeout (see `answer`), since the real timers due at the
   * same instant may run in either order.
   */
  private runDue(): void {
    this.timed = true
    try {
      this.runDueNow()
    } finally {
      this.timed = false
    }
  }

  private runDueNow(): void {
    const now = this.now
    for (const level of this.levels()) {
      for (const entry of [...level.entries.values()]) {
        if (entry.phase === "restarting" && entry.restartAt <= now && level.entries.get(entry.key) === entry) {
          // a successor whose spawn throws dies at once, and its disposal drops answered requests: whether a
          // deadline due now came first decides between a successor and forgetting the key
          if (
            this.poisoned.has(entry.path) &&
            entry.mailbox.some((id) => !this.isAnswered(id) && this.requests.get(id)!.deadline <= now) &&
            this.choose("deadline before a failing restart")
          ) this.expireDue()
          entry.phase = "active"
          entry.restartAt = Infinity
          this.log.push(`${entry.path} restarts`)
          this.startChild(entry)
        }
      }
    }
    for (const level of this.levels()) {
      for (const entry of [...level.entries.values()]) {
        const child = entry.child
        if (child?.tag !== "serve" || level.entries.get(entry.key) !== entry) continue
        if (child.busy !== undefined && child.busy.finish <= now) this.serveRun(entry)
        else if (child.waiting && child.idleAt <= now) {
          this.count("serve idle end")
          this.log.push(`${entry.path} idle for ${this.config.idleTimeToLive} ms: ends`)
          child.waiting = false
          this.childEnded(entry, "success")
        }
      }
    }
    this.expireDue()
  }

  /** The deadline timers: every request still unanswered at its deadline is answered RequestTimeout. */
  private expireDue(): void {
    for (const [id, state] of this.requests) {
      if (state.accepted && state.answer === undefined && state.deadline <= this.now) {
        this.answer(id, [{ _tag: "RequestTimeout", key: state.deadlineKey }])
      }
    }
  }

  // ---------------------------------------------------------------------------
  // A child's life
  // ---------------------------------------------------------------------------

  private answer(id: number, given: Array<Outcome>): void {
    const state = this.requests.get(id)!
    if (state.answer !== undefined) return
    const outcomes: Array<Outcome> = []
    for (const o of given) if (!outcomes.some((p) => sameOutcome(p, o))) outcomes.push(o)
    // answered by something timed at the very instant of its deadline: the deadline timer may come first
    if (this.timed && state.accepted && state.deadline === this.now) {
      const timeout: Outcome = { _tag: "RequestTimeout", key: state.deadlineKey }
      if (!outcomes.some((p) => sameOutcome(p, timeout))) outcomes.push(timeout)
    }
    state.answer = outcomes
    this.count(`answer ${outcomes.map((o) => o._tag).join("|")}`)
    if (outcomes.length > 1) this.count("answer allowed more than one outcome")
    this.log.push(`#${id} answered ${outcomes.map(showOutcome).join(" | ")} at ${this.now}`)
  }

  private deliver(entry: Entry, id: number): void {
    const list = this.delivered.get(entry.path) ?? []
    list.push(id)
    this.delivered.set(entry.path, list)
    this.requests.get(id)!.deliveredTo = entry.path
  }

  /** Start the entry's next child, at once or after a restart delay. */
  private spawn(entry: Entry, delay: number): void {
    entry.level.live++
    if (delay > 0) {
      // spawned once the delay has passed (a stop meanwhile cancels it): not a child yet
      entry.phase = "restarting"
      entry.restartAt = this.now + delay
      this.count("successor after a delay")
      this.log.push(`${entry.path} successor in ${delay} ms`)
      return
    }
    entry.phase = "active"
    this.startChild(entry)
  }

  /** `factory.spawn` is called: a new incarnation (counted by the root's stats), even if building it throws. */
  private startChild(entry: Entry): void {
    entry.incarnation++
    if (entry.level === this.root) {
      this.rootStats.spawned++
      if (entry.incarnation > 1) this.rootStats.successors++
    }
    if (this.poisoned.delete(entry.path)) {
      // handled like a child that died
      this.count("spawn throws")
      this.log.push(`${entry.path} spawn throws (incarnation ${entry.incarnation})`)
      return this.childEnded(entry, "die")
    }
    this.spawns.set(entry.path, (this.spawns.get(entry.path) ?? 0) + 1)
    this.count(entry.incarnation > 1 ? `successor ${entry.kind}` : `spawn ${entry.kind}`)
    this.log.push(`${entry.path} spawned (incarnation ${entry.incarnation})`)
    switch (entry.kind) {
      case "ctl":
        entry.child = { tag: "ctl", held: [] }
        return
      case "serve":
        entry.child = { tag: "serve", batch: [], busy: undefined, waiting: false, idleAt: Infinity }
        return this.serveRun(entry)
      case "down": {
        const level = new Level(
          `${entry.key}/`,
          innerKinds,
          this.config.innerCapacity,
          this.config.innerTimeout,
          entry
        )
        entry.child = { tag: "down", level }
        return this.route(entry)
      }
    }
  }

  /** A request was placed in a live entry's mailbox. */
  private arrived(entry: Entry): void {
    const child = entry.child
    if (child?.tag === "serve" && child.waiting) {
      child.waiting = false
      this.serveRun(entry)
    } else if (child?.tag === "down") {
      this.route(entry)
    }
  }

  /**
   * `serve`: take everything waiting, answer it in order one handler at a
   * time (skipping answered and expired requests, bounded by the deadline),
   * then wait for more, until idle too long or the mailbox has ended.
   */
  private serveRun(entry: Entry): void {
    const now = this.now
    const child = entry.child as ServeChild
    for (;;) {
      if (child.busy !== undefined) {
        if (child.busy.finish > now) return
        this.answer(child.busy.id, child.busy.outcomes)
        child.busy = undefined
      }
      const id = child.batch.shift()
      if (id !== undefined) {
        const state = this.requests.get(id)!
        if (state.answer !== undefined) continue
        const served: Outcome = { _tag: "Success", value: servedValue(id) }
        const timedOut: Array<Outcome> = [
          { _tag: "RequestTimeout", key: entry.key },
          { _tag: "RequestTimeout", key: state.deadlineKey }
        ]
        if (state.deadline !== Infinity) {
          const left = state.deadline - now
          if (left <= 0) {
            // the deadline timer and this skip are due together: either answers
            this.answer(id, timedOut)
            continue
          }
          this.deliver(entry, id)
          const work = state.req.work
          child.busy = work < left
            ? { id, finish: now + work, outcomes: [served] }
            : work === left
            ? { id, finish: now + work, outcomes: [served, ...timedOut] }
            : { id, finish: state.deadline, outcomes: timedOut }
        } else {
          this.deliver(entry, id)
          child.busy = { id, finish: now + state.req.work, outcomes: [served] }
        }
        continue
      }
      if (entry.mailbox.length > 0) {
        child.batch = entry.mailbox.splice(0)
        continue
      }
      if (entry.ended) {
        this.log.push(`${entry.path} drained its ended mailbox: ends`)
        return this.childEnded(entry, "success")
      }
      child.waiting = true
      child.idleAt = this.config.idleTimeToLive === undefined ? Infinity : now + this.config.idleTimeToLive
      return
    }
  }

  /**
   * `runChild`'s router: take everything in the parent's mailbox and place
   * each request at this level; done when this level has no entry left.
   */
  private route(entry: Entry): void {
    const level = (entry.child as DownChild).level
    if (level.state !== "running") return
    const batch = entry.mailbox.splice(0)
    for (const id of batch) {
      const state = this.requests.get(id)!
      if (state.answer !== undefined) continue
      const req = state.req
      if (req.badInner) {
        this.answer(id, [{ _tag: "Die" }])
        continue
      }
      let inner = level.entries.get(req.inner)
      if (inner !== undefined && inner.mailbox.length >= level.capacity) {
        this.answer(id, [{ _tag: "TooManyRequests", key: req.inner, capacity: level.capacity }])
        continue
      }
      if (level.timeout !== undefined && this.now + level.timeout < state.deadline) {
        state.deadline = this.now + level.timeout
        state.deadlineKey = req.inner
      }
      this.log.push(`#${id} placed at ${level.prefix}${req.inner}`)
      if (inner === undefined) {
        inner = new Entry(level, req.inner, level.kinds[req.inner]!)
        level.entries.set(req.inner, inner)
        inner.mailbox.push(id)
        this.spawn(inner, 0)
      } else {
        inner.mailbox.push(id)
        this.arrived(inner)
      }
    }
    if (batch.length > 0 && level.entries.size === 0 && level.state === "running") this.downEnds(level)
  }

  /** The downstream dispatcher returns: it stops (nothing left), and its parent's child ends. */
  private downEnds(level: Level): void {
    this.count(level.state === "running" ? "downstream ends idle" : "downstream ends")
    this.log.push(`${level.prefix} has no children left: the downstream dispatcher ends`)
    this.beginStop(level)
  }

  /** The disposal of a child that ended (DESIGN 3, 5, 6, 8 and "restart"). */
  private childEnded(entry: Entry, how: EndHow): void {
    if (entry.child === undefined || this.armed !== entry.path) return this.disposal(entry, how)
    // its finalizers run before its disposal: one sends a request for this very key
    this.armed = undefined
    const inner = entry.level !== this.root
    const req: Request = {
      id: this.nextId(),
      root: inner ? downKey : entry.key,
      inner: inner ? entry.key : "x",
      work: 0,
      badRoot: false,
      badInner: false,
      mode: "send"
    }
    this.log.push(`${entry.path} sends #${req.id} as it ends`)
    this.count(`request sent by a child as it ends (${inner ? "inner" : entry.kind})`)
    // routed at once, like any request (the parent wakes a waiting router inside the send): a request for
    // a downstream key lands in the ending child's mailbox before that child's disposal
    this.send(req)
    this.disposal(entry, how)
  }

  private disposal(entry: Entry, how: EndHow): void {
    const level = entry.level
    const child = entry.child
    this.count(`${entry.kind} ends ${how}${level.state === "running" ? "" : " while stopping"}`)
    if (child?.tag === "ctl" && child.held.some((id) => !this.isAnswered(id))) this.count("ends holding unanswered requests")
    entry.child = undefined
    level.live--
    const failed = how === "fail" || how === "die"
    let delay = 0
    if (failed) {
      entry.failures++
      entry.lastCause = how
      delay = entry.failures <= this.delays.length ? this.delays[entry.failures - 1]! : -1
      if (level === this.root) this.rootStats.failures++
    }
    if (child?.tag === "ctl") {
      // what it took and left unanswered is answered for it
      for (const id of child.held) {
        this.answer(
          id,
          [failed ? { _tag: "ChildFailed", key: entry.key, cause: how as CauseKind } : { _tag: "Unavailable", key: entry.key }]
        )
      }
    }
    if (level.state !== "running") {
      level.leftovers.push({ key: entry.key, mailbox: entry.mailbox })
      this.forget(entry)
      if (level.live === 0) this.finishStop(level)
      return
    }
    while (entry.mailbox.length > 0 && this.isAnswered(entry.mailbox[0]!)) entry.mailbox.shift()
    if (entry.mailbox.length === 0) return this.forget(entry)
    this.count("ends with requests waiting")
    if (!failed) return this.spawn(entry, 0)
    if (delay < 0) return this.giveUp(entry)
    this.spawn(entry, delay)
  }

  private giveUp(entry: Entry): void {
    this.count(`give-up ${entry.level === this.root ? "root" : "inner"} (${this.config.restart} schedule)`)
    this.log.push(`${entry.path} gave up after ${entry.failures} failures`)
    this.forget(entry)
    for (const id of entry.mailbox.splice(0)) {
      this.answer(id, [{ _tag: "ChildFailed", key: entry.key, cause: entry.lastCause! }])
    }
  }

  private forget(entry: Entry): void {
    const level = entry.level
    if (level.entries.get(entry.key) === entry) level.entries.delete(entry.key)
    this.log.push(`${entry.path} forgotten`)
    // a downstream dispatcher ends with its last child, unless a request waits for its router
    if (
      level.parent !== undefined && level.state === "running" && level.entries.size === 0 &&
      level.parent.mailbox.length === 0
    ) this.downEnds(level)
  }

  private beginStop(level: Level): void {
    if (level.state !== "running") return
    level.state = "stopping"
    for (const entry of [...level.entries.values()]) {
      entry.ended = true
      if (entry.phase === "restarting") {
        // the successor waiting out its delay is interrupted
        entry.phase = "active"
        entry.restartAt = Infinity
        level.live--
        level.leftovers.push({ key: entry.key, mailbox: entry.mailbox })
        this.forget(entry)
        continue
      }
      const child = entry.child
      if (child?.tag === "serve" && child.waiting) {
        child.waiting = false
        this.serveRun(entry)
      } else if (child?.tag === "down") {
        // its router takes what is left, then sees the end: the level below stops
        this.route(entry)
        this.beginStop(child.level)
      }
    }
    if (level.live === 0) this.finishStop(level)
  }

  private finishStop(level: Level): void {
    if (level.state === "stopped") return
    level.state = "stopped"
    for (const { key, mailbox } of level.leftovers.splice(0)) {
      for (const id of mailbox.splice(0)) {
        if (!this.isAnswered(id)) this.count(`leftover answered at stop (${level === this.root ? "root" : "inner"})`)
        this.answer(id, [{ _tag: "Unavailable", key }])
      }
    }
    this.log.push(`${level.prefix || "root"} stopped`)
    if (level.parent !== undefined) {
      // runChild returns: the parent's child ends
      this.childEnded(level.parent, "success")
    }
  }
}

/**
 * Every model `advance` may lead to: the default order of things due at the
 * same instant, and each other order at each choice point met (see
 * `Model.choices`), explored depth-first from copies of `model`.
 */
export const advanceAll = (model: Model, millis: number): Array<Model> => {
  const out: Array<Model> = []
  const explore = (choices: ReadonlyArray<boolean>) => {
    const copy = model.clone()
    copy.choices = choices
    copy.choicePoints = 0
    copy.advance(millis)
    out.push(copy)
    for (let i = choices.length; i < copy.choicePoints && out.length < 64; i++) {
      explore([...choices, ...Array<boolean>(i - choices.length).fill(false), true])
    }
  }
  explore([])
  return out
}
