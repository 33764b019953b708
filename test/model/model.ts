/**
 * A reference model of DESIGN.md's semantics, written from the contract and
 * independent of the implementation: plain TypeScript, no Effect, no fibers.
 *
 * It runs a three-level tree: a root dispatcher whose keys are served by
 * controlled children ("a", "b"), `serve` children ("s", "t") and a downstream
 * dispatcher (`runChild`, "g") whose own keys are controlled children ("x",
 * "y"), `serve` children ("s", "t") and a third level ("h": `runChild` again)
 * with controlled children ("u", "w") and a `serve` child ("v"). For any sequence of commands it says what
 * each request's answer must be, or the set of answers allowed where the
 * order of two things due at the same instant may decide.
 *
 * Time is discrete (TestClock millis). Between two commands the real system
 * is at rest, so every command is one atomic step of the model; `advance`
 * walks the timed events (deadlines, restart delays, handlers, idle ends,
 * senders' waits for room) in order.
 *
 * Each level may have a `maxChildren` (passivation of the least recently used
 * idle child) and an `overflow: { wait }` (senders wait in line for room);
 * "t" children may be `serve`d with `onStop: "interrupt"`; callers of `call`
 * may be interrupted (their request is withdrawn).
 */

// -----------------------------------------------------------------------------
// Vocabulary
// -----------------------------------------------------------------------------

export type Kind = "ctl" | "serve" | "down"

/** Root keys and what serves them. */
export const rootKinds: Readonly<Record<string, Kind>> = { a: "ctl", b: "ctl", s: "serve", t: "serve", g: "down" }
const depthName = (level: { readonly depth: Depth }): string => ["root", "inner", "leaf"][level.depth]!

/** Keys of the downstream dispatcher under root key "g". */
export const innerKinds: Readonly<Record<string, Kind>> = { x: "ctl", y: "ctl", s: "serve", t: "serve", h: "down" }
/** Keys of the third level, under "g/h" (none is a key of the level above, so an answer's key tells its level). */
export const leafKinds: Readonly<Record<string, Kind>> = { u: "ctl", w: "ctl", v: "serve" }
export const downKey = "g"
export const leafDownKey = "h"

/** The levels of the tree: 0 the root, 1 under "g", 2 under "g/h". */
export type Depth = 0 | 1 | 2

/** A request's key at a depth of the tree. */
export const keyAt = (req: Request, depth: Depth): string => (depth === 0 ? req.root : depth === 1 ? req.inner : req.leaf)

/** The request that a child at `path` would send for its own key (a finalizer's, see `armLastWords`). */
export const requestFor = (path: string, id: number): Request => {
  const [root, inner = "x", leaf = "u"] = path.split("/")
  return { id, root: root!, inner, leaf, work: 0, badRoot: false, badInner: false, mode: "send" }
}

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
  /** `serve`'s `idleTimeToLive` for every `serve` child ("s" and "t", both levels) */
  readonly idleTimeToLive: number | undefined
  /** `maxChildren` of the root and of the downstream dispatcher */
  readonly rootMaxChildren: number | undefined
  readonly innerMaxChildren: number | undefined
  /** `overflow: { wait }` in millis (`undefined`: `"reject"`; 0 is the same as `"reject"`) */
  readonly rootOverflowWait: number | undefined
  readonly innerOverflowWait: number | undefined
  /** the third level (under "g/h"): its capacity and `maxChildren`; no timeout or wait of its own */
  readonly leafCapacity: number
  readonly leafMaxChildren: number | undefined
  /** `serve`'s `onStop` for the "t" children (both levels); "s" children always drain */
  readonly tOnStop: "drain" | "interrupt"
}

export interface Request {
  readonly id: number
  readonly root: string
  readonly inner: string
  /** its key at the third level (under "g/h") */
  readonly leaf: string
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
  | {
    readonly _tag: "TooManyRequests"
    readonly key: string
    readonly capacity: number
    /** "maxChildren": a new key when every live child has work waiting (`capacity` is the cap) */
    readonly limit?: "maxChildren"
  }
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
      return `TooManyRequests(${o.key}, ${o.capacity}${o.limit === undefined ? "" : `, ${o.limit}`})`
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
  /** accepted by the root (counted in its stats, its deadline set) */
  accepted: boolean
  /**
   * What the root's `send` did: it still waits for room (`overflow: { wait }`),
   * it gave the request's Deferred ("ok": accepted, or answered `ChildFailed`
   * while it waited for a key that gave up), or it failed ("refused").
   */
  sent: "waiting" | "ok" | "refused"
  /** the answers allowed, once answered */
  answer: Array<Outcome> | undefined
  /** the deadline in force, and the key of the dispatcher whose timer owns it */
  deadline: number
  deadlineKey: string
  /** the level (`Level.id`) whose deadline timer owns it */
  deadlineLevel: number
  /** the path of the child it was delivered to (taken by a controlled child, or handed to a handler) */
  deliveredTo: string | undefined
  /** the downstream dispatchers (`Level.id`) that placed it, in order */
  routedAt: Array<number>
  /** answered by the downstream dispatcher refusing it as it waited for room (counted whether it won or not) */
  byWaiter: boolean
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
  /** `onStop: "interrupt"`: a stop interrupts it instead of letting it drain */
  readonly interruptOnStop: boolean
}

interface DownChild {
  readonly tag: "down"
  readonly level: Level
}

type Child = CtlChild | ServeChild | DownChild

/** A sender waiting for room in a full mailbox (`overflow: { wait }`), until `until`. */
export interface Waiter {
  readonly id: number
  readonly until: number
}

/**
 * What a key is doing. All but "passivating" hold a place under
 * `maxChildren`. "passivating": its mailbox was ended to make room for its
 * `heir` and its child is finishing; "reviving": passivating, and a request
 * came: a new child takes `next` once the old one has ended; "pending": a new
 * key whose first child starts once the child passivated for it has ended
 * (the cap holds at every moment).
 */
export type Phase = "active" | "restarting" | "passivating" | "reviving" | "pending"

export class Entry {
  mailbox: Array<number> = []
  /** the mailbox has ended (a stop, or a passivation) */
  ended = false
  incarnation = 0
  phase: Phase = "active"
  restartAt = Infinity
  failures = 0
  lastCause: CauseKind | undefined = undefined
  child: Child | undefined = undefined
  /** a reviving key's new mailbox, for the child after the passivated one */
  next: Array<number> | undefined = undefined
  /** passivating: the pending key that takes its place once its child has ended */
  heir: Entry | undefined = undefined
  /** senders waiting for room, first come first served, in the mailbox requests go to (`next` if reviving) */
  waiters: Array<Waiter> = []
  constructor(readonly level: Level, readonly key: string, readonly kind: Kind) {}
  get path(): string {
    return this.level.prefix + this.key
  }
}

export class Level {
  state: "running" | "stopping" | "stopped" = "running"
  /** by key, in the order of last use when `maxChildren` is set (least recently used first) */
  readonly entries = new Map<string, Entry>()
  /** mailboxes of children that ended during the stop, answered Unavailable once all have ended */
  readonly leftovers: Array<{ readonly key: string; readonly mailbox: Array<number> }> = []
  /** children alive, restart delays included */
  live = 0
  /**
   * A downstream router is placing: a batch it took (it is not waiting: what
   * arrives meanwhile waits in its mailbox for its next turn), or one request
   * handed to it directly as it waited (it still waits: another request handed
   * to it meanwhile is placed at once, inside the first). Its end waits for it.
   */
  routing: false | "batch" | "direct" = false
  /** its counters, as `Dispatcher.stats` (or `tree`) reports them; `rejected` comes from the answers */
  readonly stats = { accepted: 0, spawned: 0, successors: 0, failures: 0, withdrawn: 0 }
  /**
   * Senders refused as they waited for room, by error: counted whether or not
   * the request had an answer already (a downstream request may have one)
   */
  readonly refusedWaiters = { tooManyRequests: 0, unavailable: 0, childFailed: 0 }
  constructor(
    /** this level's identity in its model (the root is 0; each downstream dispatcher, one more) */
    readonly id: number,
    readonly depth: Depth,
    readonly prefix: string,
    readonly kinds: Readonly<Record<string, Kind>>,
    readonly capacity: number,
    readonly timeout: number | undefined,
    /** the root entry whose child this downstream dispatcher is */
    readonly parent: Entry | undefined,
    readonly maxChildren: number | undefined,
    /** millis a sender waits for room; `undefined` (or 0): refused at once */
    readonly overflowWait: number | undefined
  ) {}

  /** entries that count toward `maxChildren` */
  get resident(): number {
    let n = 0
    for (const entry of this.entries.values()) if (entry.phase !== "passivating") n++
    return n
  }
}

export interface ChildInfo {
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
  /** the identity of the last level made */
  levelIds = 0
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
  /**
   * What the real system does "on the next tick", in the order it was
   * scheduled, once the synchronous step is over (`flush`): the mailbox of a
   * child passivated to make room ends; a successor (or a revived or pending
   * key's child) starts.
   */
  private deferred: Array<{ readonly passivated: Entry } | { readonly start: Entry }> = []
  /** inside a burst (`hold`): the step goes on, and what it passivated ends once it is over (`release`) */
  private holding = false

  constructor(readonly config: Config) {
    this.root = new Level(
      0,
      0,
      "",
      rootKinds,
      config.rootCapacity,
      config.rootTimeout,
      undefined,
      config.rootMaxChildren,
      config.rootOverflowWait
    )
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
      const c = new Level(
        level.id,
        level.depth,
        level.prefix,
        level.kinds,
        level.capacity,
        level.timeout,
        parent,
        level.maxChildren,
        level.overflowWait
      )
      c.state = level.state
      c.live = level.live
      c.routing = level.routing
      Object.assign(c.stats, level.stats)
      Object.assign(c.refusedWaiters, level.refusedWaiters)
      for (const [key, entry] of level.entries) c.entries.set(key, cloneEntry(entry, c))
      for (const [key, entry] of level.entries) {
        if (entry.heir !== undefined) c.entries.get(key)!.heir = c.entries.get(entry.heir.key)
      }
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
      c.next = entry.next === undefined ? undefined : array(entry.next)
      c.waiters = [...entry.waiters]
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
    if (this.deferred.length > 0) throw new Error("a model is copied between two steps only")
    const root = cloneLevel(this.root, undefined)
    Object.assign(copy, { now: this.now, root, armed: this.armed, timed: this.timed, levelIds: this.levelIds })
    for (const [id, state] of this.requests) copy.requests.set(id, { ...state, routedAt: [...state.routedAt] })
    for (const [path, n] of this.spawns) copy.spawns.set(path, n)
    for (const [path, ids] of this.delivered) copy.delivered.set(path, [...ids])
    copy.log.push(...this.log)
    for (const [what, n] of this.coverage) copy.coverage.set(what, n)
    for (const path of this.poisoned) copy.poisoned.add(path)
    return copy
  }

  /** Everything that decides what happens next, to tell two explored models apart. */
  fingerprint(): string {
    const level = (l: Level): unknown => ({
      i: l.id,
      c: [l.stats, l.refusedWaiters],
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
        e.next,
        e.heir?.key,
        e.waiters,
        e.child?.tag === "down" ? level(e.child.level) : e.child
      ])
    })
    const requests = [...this.requests.values()].map((r) => [
      r.routedAt,
      r.byWaiter,
      r.accepted,
      r.sent,
      r.answer?.map(showOutcome),
      r.deadline,
      r.deadlineKey,
      r.deadlineLevel
    ])
    return JSON.stringify([
      this.now,
      level(this.root),
      requests,
      this.armed,
      [...this.poisoned],
      [...this.delivered]
    ])
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
    const out: Array<Level> = []
    const walk = (level: Level) => {
      out.push(level)
      for (const entry of level.entries.values()) if (entry.child?.tag === "down") walk(entry.child.level)
    }
    walk(this.root)
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
    return this.liveOf("ctl")
  }

  /** live `serve` children, sorted by path */
  liveServe(): Array<Entry> {
    return this.liveOf("serve")
  }

  private liveOf(tag: "ctl" | "serve"): Array<Entry> {
    const out: Array<Entry> = []
    for (const level of this.levels()) {
      for (const entry of level.entries.values()) {
        if (entry.child?.tag === tag) out.push(entry)
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

  /** The downstream dispatcher of the root's "g", while its child lives. */
  inner(): Level | undefined {
    const child = this.root.entries.get(downKey)?.child
    return child?.tag === "down" ? child.level : undefined
  }

  /** The third level, under "g/h", while its child lives. */
  leaf(): Level | undefined {
    const child = this.inner()?.entries.get(leafDownKey)?.child
    return child?.tag === "down" ? child.level : undefined
  }

  /** `Dispatcher.children` of the root */
  rootChildren(): Array<ChildInfo> {
    return this.childrenOf(this.root)
  }

  /** `Dispatcher.children` of a level (the `children` of its `Dispatcher.tree`): the keys served by a child now */
  childrenOf(level: Level): Array<ChildInfo> {
    const out: Array<ChildInfo> = []
    for (const entry of level.entries.values()) {
      // a key whose successor waits out a restart delay, or whose first child waits for its place, has no child now
      if (entry.phase === "restarting" || entry.phase === "pending") continue
      out.push({
        key: entry.key,
        mailboxSize: entry.mailbox.length + (entry.next?.length ?? 0),
        incarnation: entry.incarnation
      })
    }
    return out
  }

  isAnswered(id: number): boolean {
    return this.requests.get(id)?.answer !== undefined
  }

  /** What the root's `send` has done by now: still waiting for room, gave the Deferred, or its refusal. */
  sendStatus(id: number): Outcome | "accepted" | "waiting" {
    const state = this.requests.get(id)!
    return state.sent === "waiting" ? "waiting" : state.sent === "ok" ? "accepted" : state.answer![0]!
  }

  /** `call`s whose caller still waits (for its answer, or for room), by id: the ones a caller can withdraw */
  waitingCalls(): Array<number> {
    const out: Array<number> = []
    for (const [id, state] of this.requests) {
      if (state.req.mode === "call" && state.answer === undefined) out.push(id)
    }
    return out
  }

  // ---------------------------------------------------------------------------
  // Commands
  // ---------------------------------------------------------------------------

  /**
   * A request is sent. Returns what the root's `send` did by the end of the
   * step: "accepted", "waiting" (for room), or its refusal.
   */
  send(req: Request): Outcome | "accepted" | "waiting" {
    const sent = this.sendNow(req)
    this.flush()
    return sent
  }

  private sendNow(req: Request): Outcome | "accepted" | "waiting" {
    const state: RequestState = {
      req,
      accepted: false,
      sent: "waiting",
      answer: undefined,
      deadline: Infinity,
      deadlineKey: req.root,
      deadlineLevel: 0,
      deliveredTo: undefined,
      routedAt: [],
      byWaiter: false
    }
    this.requests.set(req.id, state)
    if (req.badRoot) return this.refuse(state, { _tag: "Die" })
    const root = this.root
    if (root.state !== "running") return this.refuse(state, { _tag: "Unavailable", key: req.root })
    const placed = this.place(root, req.root, req.id)
    if (placed === "waiting") {
      this.log.push(`#${req.id} waits for room at ${req.root}`)
      return placed
    }
    if (placed !== "accepted") return this.refuse(state, placed)
    return placed
  }

  /** The root's `send` fails. */
  private refuse(state: RequestState, o: Outcome): Outcome {
    state.sent = "refused"
    state.answer = [o]
    this.count(`refused at send ${o._tag}${o._tag === "TooManyRequests" && o.limit !== undefined ? ` (${o.limit})` : ""}`)
    this.log.push(`#${state.req.id} refused ${showOutcome(o)}`)
    return o
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

  /** A controlled child takes up to `n` requests from its mailbox; each take makes room for a waiting sender. */
  take(path: string, n: number): Array<number> {
    const entry = this.ctlAt(path)!
    const taken: Array<number> = []
    while (taken.length < n && entry.mailbox.length > 0) {
      const id = entry.mailbox.shift()!
      taken.push(id)
      ;(entry.child as CtlChild).held.push(id)
      this.deliver(entry, id)
      this.admit(entry)
    }
    this.log.push(`${path} took [${taken.join(", ")}]`)
    this.flush()
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
    this.flush()
  }

  /**
   * A `serve` child is interrupted from outside: the request its handler works
   * on and the rest of its batch are answered Unavailable (DESIGN 10), and it
   * is handled like any interrupted child (a successor at once if requests wait).
   */
  interruptServe(path: string): void {
    const entry = this.liveServe().find((e) => e.path === path)!
    this.log.push(`${path} (serve) interrupted`)
    this.abandonServe(entry)
    this.childEnded(entry, "interrupt")
    this.flush()
  }

  /** A `serve` child's fiber is interrupted: what it holds is answered Unavailable. */
  private abandonServe(entry: Entry): void {
    const child = entry.child as ServeChild
    const abandoned = [...(child.busy === undefined ? [] : [child.busy.id]), ...child.batch]
    child.busy = undefined
    child.batch = []
    child.waiting = false
    for (const id of abandoned) this.answer(id, [{ _tag: "Unavailable", key: entry.key }])
  }

  /**
   * The caller of a `call` is interrupted while it waits. Waiting for its
   * answer: the request is withdrawn (answered with the interruption, counted
   * `withdrawn`): a child that has not taken it skips it, a `serve` handler
   * working on it is interrupted if the request has a deadline (without one,
   * it runs to its end and its answer is dropped). Waiting for room: it leaves
   * the line, nothing counted.
   */
  withdraw(id: number): void {
    const state = this.requests.get(id)!
    if (state.answer !== undefined) throw new Error(`#${id} is answered: its caller does not wait`)
    if (state.sent === "waiting") {
      const entry = this.root.entries.get(state.req.root)!
      entry.waiters = entry.waiters.filter((w) => w.id !== id)
      state.sent = "refused"
      this.count("call interrupted while it waits for room")
      this.log.push(`#${id}: its caller is interrupted while it waits for room`)
      this.answer(id, [{ _tag: "Interrupted" }])
      return
    }
    this.count("call withdrawn")
    this.log.push(`#${id}: its caller is interrupted: withdrawn`)
    this.answer(id, [{ _tag: "Interrupted" }])
    this.root.stats.withdrawn++
    for (const entry of this.liveServe()) {
      const child = entry.child as ServeChild
      if (child.busy?.id === id && state.deadline !== Infinity) {
        this.count("handler interrupted: its request was withdrawn")
        this.log.push(`${entry.path}: the handler of #${id} is interrupted`)
        child.busy = undefined
        this.serveRun(entry)
      }
    }
    this.flush()
  }

  /** The next spawn for `path` throws while building its effect. */
  poison(path: string): void {
    this.poisoned.add(path)
    this.log.push(`${path}: its next spawn will throw`)
  }

  /**
   * A burst: the commands until `release` are one synchronous step of the real
   * system (sends and ends in one go, nothing scheduled runs in between), so
   * what they passivate ends only once the burst is over.
   */
  hold(): void {
    this.holding = true
    this.log.push("a burst begins")
  }

  release(): void {
    this.holding = false
    this.log.push("the burst is over")
    this.flush()
  }

  /** Root stop begins (`shutdown` or closing its Scope); idempotent. */
  shutdown(): void {
    this.log.push(this.rootRunning ? "root stop begins" : "root stop requested again")
    this.beginStop(this.root)
    this.flush()
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
  // Placing a request (`place` in dispatcher.ts), passivation, waiting for room
  // ---------------------------------------------------------------------------

  /**
   * Place a request for `key` at a running level, in one synchronous step:
   * find or make the entry (making room under `maxChildren`), refuse, queue
   * the sender for room, or accept. What was passivated ends after the step.
   */
  private place(level: Level, key: string, id: number): Outcome | "accepted" | "waiting" {
    let entry = level.entries.get(key)
    if (entry === undefined) {
      const room = this.makeRoom(level, undefined)
      if (room === false) return this.capReached(level, key)
      entry = new Entry(level, key, level.kinds[key]!)
      level.entries.set(key, entry)
      entry.mailbox.push(id)
      this.accept(entry, id)
      if (room === undefined) {
        this.spawn(entry, 0)
        return "accepted"
      }
      // its first child starts in the place of the one passivated for it, once that one has ended
      entry.phase = "pending"
      room.heir = entry
      this.deferred.push({ passivated: room })
      this.count(`pending ${depthName(level)} ${entry.kind}`)
      this.log.push(`${entry.path} waits for the place of ${room.path}`)
      return "accepted"
    }
    if (entry.phase === "passivating") {
      // its child ends with its own mailbox; a new child takes this one once it has
      const room = this.makeRoom(level, entry)
      if (room === false) return this.capReached(level, key)
      // the key it was passivated for waits for the one passivated now instead (or starts, if a place is free)
      const heir = entry.heir
      entry.heir = undefined
      entry.next = []
      entry.phase = "reviving"
      if (room !== undefined) {
        room.heir = heir
        this.deferred.push({ passivated: room })
      } else if (heir !== undefined) this.startHeir(heir)
      this.count(`revived ${depthName(level)} ${entry.kind}`)
      this.log.push(`${entry.path} revived: a new mailbox for the child after the passivated one`)
    }
    const mailbox = entry.next ?? entry.mailbox
    if (mailbox.length >= level.capacity) {
      if (level.overflowWait === undefined || level.overflowWait <= 0) {
        return { _tag: "TooManyRequests", key, capacity: level.capacity }
      }
      entry.waiters.push({ id, until: this.now + level.overflowWait })
      this.count(`waits for room (${depthName(level)})`)
      return "waiting"
    }
    mailbox.push(id)
    this.accept(entry, id)
    // a revived key's new child starts once the old one has ended
    if (mailbox === entry.mailbox) this.arrived(entry)
    return "accepted"
  }

  /** A request is in a mailbox: counted, its deadline set, its key the most recently used. */
  private accept(entry: Entry, id: number): void {
    const level = entry.level
    const state = this.requests.get(id)!
    level.stats.accepted++
    if (level === this.root) {
      state.accepted = true
      state.sent = "ok"
      if (level.timeout !== undefined) {
        state.deadline = this.now + level.timeout
        state.deadlineKey = entry.key
        state.deadlineLevel = level.id
      }
    } else if (level.timeout !== undefined && this.now + level.timeout < state.deadline) {
      // a downstream request's deadline is the root's unless this level's own is earlier
      state.deadline = this.now + level.timeout
      state.deadlineKey = entry.key
      state.deadlineLevel = level.id
    }
    // the least recently used child is the one with the oldest last accepted request
    this.touch(entry)
    this.log.push(`#${id} accepted at ${entry.path}`)
  }

  /** Under `maxChildren`, the entries are kept in the order of last use: `entry` is the most recent. */
  private touch(entry: Entry): void {
    const level = entry.level
    if (level.maxChildren === undefined || level.entries.get(entry.key) !== entry) return
    level.entries.delete(entry.key)
    level.entries.set(entry.key, entry)
  }

  /**
   * Below the cap: `undefined`. At the cap: the least recently used child
   * whose mailbox is empty (taken requests it has not answered do not count)
   * is passivated and returned; if every child has work waiting, `false`.
   */
  private makeRoom(level: Level, reviving: Entry | undefined): Entry | undefined | false {
    if (level.maxChildren === undefined || level.resident < level.maxChildren) return undefined
    for (const entry of level.entries.values()) {
      if (entry !== reviving && entry.phase === "active" && entry.child !== undefined && entry.mailbox.length === 0) {
        entry.phase = "passivating"
        this.count(`passivated ${depthName(level)} ${entry.kind}`)
        this.log.push(`${entry.path} passivated to make room`)
        return entry
      }
    }
    return false
  }

  private capReached(level: Level, key: string): Outcome {
    this.count(`no room for a child (${depthName(level)})`)
    return { _tag: "TooManyRequests", key, capacity: level.maxChildren!, limit: "maxChildren" }
  }

  /**
   * After a synchronous step: the mailboxes of the children passivated in it
   * end (they were empty), and each child sees it: a waiting `serve` child ends,
   * a busy one ends once its batch is done, a downstream dispatcher stops, a
   * controlled child goes on until told to end.
   */
  private flush(): void {
    if (this.holding) return
    while (this.deferred.length > 0) {
      const next = this.deferred.shift()!
      if ("start" in next) {
        const entry = next.start
        if (entry.level.entries.get(entry.key) !== entry || entry.child !== undefined || entry.phase !== "active") continue
        this.startChild(entry)
        continue
      }
      const entry = next.passivated
      const level = entry.level
      if (
        entry.child === undefined || level.entries.get(entry.key) !== entry ||
        (entry.phase !== "passivating" && entry.phase !== "reviving") || entry.ended
      ) continue
      entry.ended = true
      const child = entry.child
      if (child.tag === "serve" && child.waiting) {
        child.waiting = false
        this.serveRun(entry)
      } else if (child.tag === "down") {
        this.route(entry)
        this.beginStop(child.level)
      }
    }
  }

  /** Room in the mailbox requests go to: the senders waiting for it get in, in order. */
  private admit(entry: Entry): void {
    const mailbox = entry.next ?? entry.mailbox
    while (entry.waiters.length > 0 && mailbox.length < entry.level.capacity) {
      const waiter = entry.waiters.shift()!
      mailbox.push(waiter.id)
      this.count(`waiter admitted (${depthName(entry.level)})`)
      this.accept(entry, waiter.id)
    }
  }

  /**
   * The senders waiting for room at a key are refused: `Unavailable` at a stop,
   * `ChildFailed` when its restarts gave up (DESIGN "restart": every request
   * waiting for that key).
   */
  private refuseWaiters(entry: Entry, answer: Outcome & { _tag: "Unavailable" | "ChildFailed" }): void {
    for (const waiter of entry.waiters.splice(0)) {
      const state = this.requests.get(waiter.id)!
      this.count(`waiter refused ${answer._tag} (${depthName(entry.level)})`)
      if (entry.level !== this.root) this.waiterAnswer(entry.level, state, answer)
      else if (answer._tag === "ChildFailed") {
        // the root's `send` gives the Deferred, answered
        state.sent = "ok"
        this.answer(waiter.id, [answer])
      } else this.refuse(state, answer)
    }
  }

  /** A downstream sender refused as it waited: counted, and answered if nothing has answered it yet. */
  private waiterAnswer(level: Level, state: RequestState, answer: Outcome & { _tag: "Unavailable" | "ChildFailed" | "TooManyRequests" }): void {
    level.refusedWaiters[answer._tag === "Unavailable" ? "unavailable" : answer._tag === "ChildFailed" ? "childFailed" : "tooManyRequests"]++
    if (state.answer !== undefined) return
    state.byWaiter = true
    this.answer(state.req.id, [answer])
  }

  /** Senders whose wait for room has passed: `TooManyRequests`. */
  private expireWaiters(which: (waiter: Waiter) => boolean = () => true): void {
    for (const level of this.levels()) {
      for (const entry of level.entries.values()) {
        const passed = (w: Waiter) => w.until <= this.now && which(w)
        if (!entry.waiters.some(passed)) continue
        const due = entry.waiters.filter(passed)
        entry.waiters = entry.waiters.filter((w) => !passed(w))
        for (const waiter of due) {
          const full = { _tag: "TooManyRequests", key: entry.key, capacity: level.capacity } as const
          this.count(`wait for room passed (${depthName(level)})`)
          if (level === this.root) this.refuse(this.requests.get(waiter.id)!, full)
          else this.waiterAnswer(level, this.requests.get(waiter.id)!, full)
        }
      }
    }
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
        for (const waiter of entry.waiters) next = Math.min(next, waiter.until)
      }
    }
    for (const state of this.requests.values()) {
      if (state.accepted && state.answer === undefined) next = Math.min(next, state.deadline)
    }
    return next
  }

  /**
   * Everything due now. Restarts and serve children go first, then the senders
   * whose wait for room passed, the deadline timer last; anything answered at
   * the instant of its own deadline also allows RequestTimeout (see `answer`),
   * since the real timers due at the same instant may run in either order.
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
    // a sender's wait passing at the very instant room is made: either comes first, for each sender (each wait is a
    // timer of its own, ordered by when it was set)
    if (this.restartDue() || this.serveDue()) {
      for (const level of this.levels()) {
        for (const entry of level.entries.values()) {
          for (const waiter of entry.waiters.filter((w) => w.until <= now)) {
            if (this.choose("a wait for room passes before room is made")) this.expireWaiters((w) => w === waiter)
          }
        }
      }
    }
    // the deadline timers before the other timers due at the same instant: what a deadline answers then is
    // skipped, not handled (a successor whose spawn throws drops it and may forget its key; a revived downstream
    // dispatcher does not route it, and may end at once)
    if (this.deadlineDue() && (this.restartDue() || this.serveDue()) && this.choose("deadlines before the other timers")) {
      this.expireDue()
    }
    // a `serve` child's timer before a restart due at the same instant: its end (a request sent as it ends,
    // a passivation, a downstream dispatcher ending) can stop the level where the successor was due
    if (this.restartDue() && this.serveDue() && this.choose("a serve child's timer before a restart")) this.runServeTimers()
    this.runRestarts()
    this.runServeTimers()
    this.flush()
    this.expireWaiters()
    // the deadline timers, one per dispatcher, in either order when two are due together; a handler cut off at its
    // deadline is interrupted by its timer's answer, so it ends right after that timer
    const timers = this.dueDeadlineLevels()
    if (timers.length > 1 && this.choose("deadline timers of two dispatchers due together, in the other order")) timers.reverse()
    for (const level of timers) {
      this.expireDue(level)
      this.runServeTimers()
      this.flush()
    }
  }

  /** The levels whose deadline timer has something due now, root first. */
  private dueDeadlineLevels(): Array<number> {
    const due = new Set<number>()
    for (const state of this.requests.values()) {
      if (state.accepted && state.answer === undefined && state.deadline <= this.now) due.add(state.deadlineLevel)
    }
    return [...due].sort((a, b) => a - b)
  }

  private deadlineDue(): boolean {
    for (const state of this.requests.values()) {
      if (state.accepted && state.answer === undefined && state.deadline <= this.now) return true
    }
    return false
  }

  private restartDue(): boolean {
    return this.levels().some((l) => [...l.entries.values()].some((e) => e.phase === "restarting" && e.restartAt <= this.now))
  }

  private serveDue(): boolean {
    for (const level of this.levels()) {
      for (const entry of level.entries.values()) {
        const child = entry.child
        if (child?.tag !== "serve") continue
        if ((child.busy?.finish ?? Infinity) <= this.now || (child.waiting && child.idleAt <= this.now)) return true
      }
    }
    return false
  }

  private runRestarts(): void {
    const now = this.now
    for (const level of this.levels()) {
      for (const entry of [...level.entries.values()]) {
        if (entry.phase === "restarting" && entry.restartAt <= now && level.entries.get(entry.key) === entry) {
          entry.phase = "active"
          entry.restartAt = Infinity
          this.log.push(`${entry.path} restarts`)
          this.startChild(entry)
          // the clock lets what a timer woke settle (a passivated child's end) before the next timer
          this.flush()
        }
      }
    }
  }

  /**
   * The `serve` children's timers due now: handlers done, idle times passed.
   * Two due at the same instant may fire in either order (the real order is
   * when each was set, which the model does not follow), and one's end can
   * change what the other's does (a request sent as it ends, passivation, a
   * downstream dispatcher ending): both orders are explored.
   */
  private runServeTimers(): void {
    const now = this.now
    const due: Array<Entry> = []
    for (const level of this.levels()) {
      for (const entry of level.entries.values()) {
        const child = entry.child
        if (child?.tag !== "serve") continue
        // a handler cut off at its deadline ends once the deadline timer has answered its request
        if (child.busy !== undefined && isCutOff(child.busy) && !this.isAnswered(child.busy.id)) continue
        if ((child.busy?.finish ?? Infinity) <= now || (child.waiting && child.idleAt <= now)) due.push(entry)
      }
    }
    if (due.length > 1 && this.choose("serve children's timers due together, in the other order")) due.reverse()
    for (const entry of due) {
      // an earlier one may have ended this one, or its level
      const child = entry.child
      if (child?.tag !== "serve" || entry.level.entries.get(entry.key) !== entry) continue
      if (child.busy !== undefined && child.busy.finish <= now) this.serveRun(entry)
      else if (child.waiting && child.idleAt <= now) {
        this.count("serve idle end")
        this.log.push(`${entry.path} idle for ${this.config.idleTimeToLive} ms: ends`)
        child.waiting = false
        this.childEnded(entry, "success")
      }
      this.flush()
    }
  }

  /** The deadline timers: every request still unanswered at its deadline is answered RequestTimeout. */
  private expireDue(level?: number): void {
    for (const [id, state] of this.requests) {
      if (level !== undefined && state.deadlineLevel !== level) continue
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

  /**
   * Start the entry's next child: at once (a new key's first child, in the
   * sender's call), on the next tick (`later`: a successor, a revived or
   * pending key's child), or after a restart delay.
   */
  private spawn(entry: Entry, delay: number, later = false): void {
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
    if (!later) return this.startChild(entry)
    this.deferred.push({ start: entry })
  }

  /** `factory.spawn` is called: a new incarnation (counted by the root's stats), even if building it throws. */
  private startChild(entry: Entry): void {
    entry.incarnation++
    entry.level.stats.spawned++
    if (entry.incarnation > 1) entry.level.stats.successors++
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
        entry.child = {
          tag: "serve",
          batch: [],
          busy: undefined,
          waiting: false,
          idleAt: Infinity,
          interruptOnStop: entry.key === "t" && this.config.tOnStop === "interrupt"
        }
        return this.serveRun(entry)
      case "down": {
        const c = this.config
        const level = entry.level.depth === 0
          ? new Level(++this.levelIds, 1, `${entry.path}/`, innerKinds, c.innerCapacity, c.innerTimeout, entry, c.innerMaxChildren, c.innerOverflowWait)
          : new Level(++this.levelIds, 2, `${entry.path}/`, leafKinds, c.leafCapacity, undefined, entry, c.leafMaxChildren, undefined)
        entry.child = { tag: "down", level }
        this.route(entry)
        // started on a mailbox that has ended already (a stop began before it started): it stops in turn
        if (entry.ended && entry.child?.tag === "down") this.beginStop(level)
        return
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
      // an idle router with nothing else waiting takes the request straight from its sender
      if (entry.mailbox.length === 1) this.routeDirect(entry)
      else this.route(entry)
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
        const { id, outcomes } = child.busy
        child.busy = undefined
        this.serveAnswer(entry, id, outcomes)
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
        this.admit(entry)
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
   * A `serve` handler's answer. A success that wins starts the key's restart
   * backoff over (DESIGN "restart"); where the deadline timer may win at the
   * same instant, both orders are explored, since they leave different states.
   */
  private serveAnswer(entry: Entry, id: number, outcomes: Array<Outcome>): void {
    if (this.isAnswered(id)) return
    const served = outcomes.filter((o) => o._tag === "Success")
    if (served.length === 0) return this.answer(id, outcomes)
    const state = this.requests.get(id)!
    const late = this.timed && state.accepted && state.deadline === this.now
    if (entry.failures > 0 && (outcomes.length > served.length || late)) {
      if (this.choose("the deadline timer before a handler's success, with failures to reset")) {
        const timeout: Outcome = { _tag: "RequestTimeout", key: state.deadlineKey }
        const others = outcomes.filter((o) => o._tag !== "Success")
        return this.answer(id, others.length > 0 ? others : [timeout])
      }
      state.answer = served
      this.log.push(`#${id} answered ${showOutcome(served[0]!)} at ${this.now} (explored: before its deadline)`)
    } else {
      this.answer(id, outcomes)
    }
    entry.failures = 0
  }

  /**
   * `runChild`'s router: take everything in the parent's mailbox and place
   * each request at this level; done when this level has no entry left.
   */
  private route(entry: Entry): void {
    const level = (entry.child as DownChild).level
    // a router busy placing a batch is not waiting: what arrives meanwhile waits for its next turn of the loop
    if (level.state !== "running" || level.routing === "batch") return
    let routed = false
    level.routing = "batch"
    try {
      while (entry.mailbox.length > 0 && level.state === "running") {
        const batch = entry.mailbox.splice(0)
        this.admit(entry)
        routed = true
        for (const id of batch) this.routeOne(level, id)
      }
    } finally {
      level.routing = false
    }
    if (routed && level.entries.size === 0 && level.state === "running") this.downEnds(level)
  }

  /**
   * `runChild`'s router takes the one request in the parent's mailbox straight
   * from its sender, as it waits (the real router's `takeDirect`): nested in
   * another such placement if one is under way.
   */
  private routeDirect(entry: Entry): void {
    const level = (entry.child as DownChild).level
    if (level.state !== "running" || level.routing === "batch") return
    const id = entry.mailbox.shift()!
    this.admit(entry)
    level.routing = "direct"
    try {
      this.routeOne(level, id)
    } finally {
      level.routing = false
    }
    if (level.entries.size === 0 && level.state === "running") this.downEnds(level)
  }

  private routeOne(level: Level, id: number): void {
    const state = this.requests.get(id)!
    if (state.answer !== undefined) return
    const req = state.req
    if (req.badInner && level.depth === 1) return this.answer(id, [{ _tag: "Die" }])
    state.routedAt.push(level.id)
    const key = keyAt(req, level.depth)
    const placed = this.place(level, key, id)
    if (placed === "waiting") this.log.push(`#${id} waits for room at ${level.prefix}${key}`)
    else if (placed !== "accepted") this.answer(id, [placed])
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
    const req = requestFor(entry.path, this.nextId())
    this.log.push(`${entry.path} sends #${req.id} as it ends`)
    this.count(`request sent by a child as it ends (${inner ? "inner" : entry.kind})`)
    // routed at once, like any request (the parent wakes a waiting router inside the send): a request for
    // a downstream key lands in the ending child's mailbox before that child's disposal
    this.sendNow(req)
    this.disposal(entry, how)
  }

  private disposal(entry: Entry, how: EndHow): void {
    const level = entry.level
    const child = entry.child
    this.count(`${entry.kind} ends ${how}${level.state === "running" ? "" : " while stopping"}${
      entry.phase === "passivating" || entry.phase === "reviving" ? ` (${entry.phase})` : ""
    }`)
    if (child?.tag === "ctl" && child.held.some((id) => !this.isAnswered(id))) this.count("ends holding unanswered requests")
    entry.child = undefined
    level.live--
    const failed = how === "fail" || how === "die"
    let delay = 0
    if (failed) {
      entry.failures++
      entry.lastCause = how
      delay = entry.failures <= this.delays.length ? this.delays[entry.failures - 1]! : -1
      level.stats.failures++
      // a defect before it took a request would come again: not restarted
      if (how === "die" && (child === undefined || (child.tag === "ctl" && child.held.length === 0))) {
        this.count("died before it took a request")
        delay = -1
      }
    }
    if (child?.tag === "ctl") {
      // what it took and left unanswered is answered for it
      for (const id of [...child.held]) {
        this.answer(
          id,
          [failed ? { _tag: "ChildFailed", key: entry.key, cause: how as CauseKind } : { _tag: "Unavailable", key: entry.key }]
        )
      }
    }
    if (level.state !== "running") {
      level.leftovers.push({ key: entry.key, mailbox: entry.mailbox })
      if (entry.next !== undefined) level.leftovers.push({ key: entry.key, mailbox: entry.next })
      entry.next = undefined
      this.forget(entry)
      if (level.live === 0) this.finishStop(level)
      return
    }
    while (entry.mailbox.length > 0 && this.isAnswered(entry.mailbox[0]!)) {
      entry.mailbox.shift()
      this.admit(entry)
    }
    if (entry.phase === "passivating") {
      // its place goes to the key it was passivated for
      const heir = entry.heir
      entry.heir = undefined
      this.forget(entry)
      if (heir !== undefined) this.startHeir(heir)
      return
    }
    if (entry.phase === "reviving") {
      // the new child takes the new mailbox, afresh: no failures behind it
      this.count("revived key's new child")
      entry.mailbox = entry.next!
      entry.next = undefined
      entry.ended = false
      entry.failures = 0
      entry.incarnation = 0
      return this.spawn(entry, 0, true)
    }
    if (entry.mailbox.length === 0) return this.forget(entry)
    this.count("ends with requests waiting")
    if (!failed) return this.spawn(entry, 0, true)
    if (delay < 0) return this.giveUp(entry)
    this.spawn(entry, delay)
  }

  /** The place of a passivated child is free: the key waiting for it starts its child, or is forgotten if nothing waits. */
  private startHeir(heir: Entry): void {
    if (heir.phase !== "pending" || heir.level.entries.get(heir.key) !== heir) return
    heir.phase = "active"
    while (heir.mailbox.length > 0 && this.isAnswered(heir.mailbox[0]!)) {
      heir.mailbox.shift()
      this.admit(heir)
    }
    this.count(heir.mailbox.length === 0 ? "pending key forgotten: its requests were answered" : "pending key starts")
    if (heir.mailbox.length === 0) return this.forget(heir)
    this.log.push(`${heir.path} takes its place`)
    this.spawn(heir, 0, true)
  }

  private giveUp(entry: Entry): void {
    this.count(`give-up ${depthName(entry.level)} (${this.config.restart} schedule)`)
    this.log.push(`${entry.path} gave up after ${entry.failures} failures`)
    this.forget(entry)
    const failed = { _tag: "ChildFailed", key: entry.key, cause: entry.lastCause! } as const
    this.refuseWaiters(entry, failed)
    for (const id of entry.mailbox.splice(0)) this.answer(id, [failed])
  }

  private forget(entry: Entry): void {
    const level = entry.level
    if (level.entries.get(entry.key) === entry) level.entries.delete(entry.key)
    this.log.push(`${entry.path} forgotten`)
    // a downstream dispatcher ends with its last child, unless a request waits for its router
    if (
      level.parent !== undefined && level.state === "running" && level.entries.size === 0 && !level.routing &&
      level.parent.mailbox.length === 0
    ) this.downEnds(level)
  }

  private beginStop(level: Level): void {
    if (level.state !== "running") return
    level.state = "stopping"
    // first what no child will take (a child ending below may finish the stop at once)
    for (const entry of [...level.entries.values()]) {
      if (entry.phase === "pending") {
        // no child yet: what waits for it is left over
        this.refuseWaiters(entry, { _tag: "Unavailable", key: entry.key })
        entry.ended = true
        level.leftovers.push({ key: entry.key, mailbox: entry.mailbox })
        this.forget(entry)
      } else if (entry.next !== undefined) {
        // a revived key's new mailbox: its child will never start
        level.leftovers.push({ key: entry.key, mailbox: entry.next })
        entry.next = undefined
      }
    }
    for (const entry of [...level.entries.values()]) {
      this.refuseWaiters(entry, { _tag: "Unavailable", key: entry.key })
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
      if (child?.tag === "serve" && child.interruptOnStop) {
        // `onStop: "interrupt"`: what it holds is answered Unavailable, what waits in its mailbox is a leftover
        this.count("serve interrupted by the stop")
        this.log.push(`${entry.path} (serve, onStop: interrupt) interrupted by the stop`)
        this.abandonServe(entry)
        this.childEnded(entry, "interrupt")
      } else if (child?.tag === "serve" && child.waiting) {
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
        if (!this.isAnswered(id)) this.count(`leftover answered at stop (${depthName(level)})`)
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

/** A handler that will not finish before its request's deadline: it is cut off there. */
const isCutOff = (busy: { readonly outcomes: ReadonlyArray<Outcome> }): boolean =>
  busy.outcomes.every((o) => o._tag === "RequestTimeout")

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
    for (let i = choices.length; i < copy.choicePoints && out.length < 1024; i++) {
      explore([...choices, ...Array<boolean>(i - choices.length).fill(false), true])
    }
  }
  explore([])
  return out
}
