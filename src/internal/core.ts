/**
 * A dispatcher's state: its registry of entries, its counts, its stop, and
 * what it shares with its children (services, clock, timers, mailboxes).
 */
import { Clock, Context, Deferred, type Fiber, LogLevel, References } from "effect"
import type * as Dispatcher from "../Dispatcher.js"
import { Deadlines } from "./deadlines.js"
import { type Entry, type RecentEntry, reject } from "./entry.js"
import type { FailureRecord } from "./failures.js"
import type { RateSampler } from "./hotKeys.js"
import { IdleTimers } from "./idleTimers.js"
import type { Mailbox, Mailboxes } from "./mailbox.js"
import * as metrics from "./metrics.js"
import type { Resolved } from "./options.js"
import { Recency } from "./recency.js"

type AnyFactory = Dispatcher.Factory<any, any, any, any>

/** @internal */
export const Running = 0
/** @internal */
export const Stopping = 1
/** @internal */
export const Stopped = 2

/**
 * The dispatcher whose child the current fiber runs in (the innermost, in a
 * tree), so a `shutdown` called from inside knows not to wait for itself.
 *
 * @internal
 */
export const Within = Context.Reference<Core | undefined>("effect-dispatcher/Within", {
  defaultValue: () => undefined
})

/** @internal */
export interface Counters {
  accepted: number
  withdrawn: number
  spawned: number
  successors: number
  failures: number
  tooManyRequests: number
  unavailable: number
  requestTimeout: number
  childFailed: number
}

/**
 * One dispatcher, root or downstream.
 *
 * @internal
 */
export class Core implements Counters {
  state: typeof Running | typeof Stopping | typeof Stopped = Running
  readonly registry = new Map<string, Entry>()
  /** entries that hold a place under `maxChildren`: all but those passivating */
  resident = 0
  /** child fibers alive, restart delays included: a stop waits for all of them */
  fibers = 0
  /** successors waiting out a restart delay, not yet spawned */
  restarting = 0
  /** new keys waiting for the child passivated for them to end (`Pending`) */
  pending = 0
  /** revived keys whose new child waits for the old one to end (`Reviving`) */
  reviving = 0
  /** children passivated by `passivate`: still holding their place under the cap until they end */
  ending = 0
  accepted = 0
  withdrawn = 0
  spawned = 0
  successors = 0
  failures = 0
  tooManyRequests = 0
  unavailable = 0
  requestTimeout = 0
  childFailed = 0
  readonly stopped = Deferred.makeUnsafe<void>()
  /** mailboxes left when their children ended during a stop, answered once all have ended */
  leftovers: Array<Mailbox> = []
  /** a downstream dispatcher is told when its last child is gone */
  onIdle: (() => void) | undefined = undefined
  /** a downstream dispatcher is routing a batch: its end waits for the batch */
  routing = false
  /** children running inside a sender's call right now */
  depth = 0
  /** with `shutdownTimeout`: the timer that interrupts the children still running */
  forceTimer: Fiber.Fiber<void> | undefined = undefined
  /** `hotKeys` by rate: the last look at the keys' counts, made on the first such call */
  rateSampler: RateSampler | undefined = undefined
  /** told of every child that fails here or below (an inspector's), while someone watches */
  failureWatchers: Set<(record: FailureRecord) => void> | undefined = undefined
  /** a handler returned something that is not an Effect: said once */
  warnedNotAnEffect = false
  /** what children run with: the dispatcher's services, and which dispatcher they are inside */
  readonly childContext: Context.Context<never>
  /** the dispatcher this one runs inside, if it is a child's (a downstream level) */
  readonly outer: Core | undefined
  readonly deadlines: Deadlines | undefined
  idleTimers: IdleTimers | undefined = undefined
  readonly clock: Clock.Clock
  readonly annotations: Record<string, unknown>
  /** with `maxChildren`: the keys by their last accepted request, to passivate the least recent */
  readonly recency: Recency<RecentEntry> | undefined
  /** whether its children's spawns and ends are logged: they run with its services, so this is known once */
  readonly debug: boolean
  /**
   * Whether a request for `key` at this level is fenced (see `Options.fence`):
   * its own fence, or its parent's for the key it serves (set by `runChild`).
   * `undefined` when no level has a fence: nothing is asked.
   */
  fenced: ((key: string) => boolean) | undefined
  /** a downstream level: whether the level above fences the key this level serves */
  fencedAbove: (() => boolean) | undefined = undefined
  private readonly detachMetrics: () => void

  constructor(
    readonly options: Resolved,
    readonly factory: AnyFactory,
    /** the services children run with */
    readonly context: Context.Context<never>,
    /** `groups/g1/topics`: each level's name, then the key it serves */
    readonly path: string,
    readonly mailboxes: Mailboxes
  ) {
    this.clock = Context.get(context, Clock.Clock)
    this.outer = Context.get(context, Within)
    this.childContext = Context.add(context, Within, this)
    this.deadlines = options.requestTimeout === undefined ? undefined : new Deadlines(this.clock, context)
    if (this.deadlines !== undefined) this.deadlines.expire = (envelope) => reject(envelope, "requestTimeout")
    this.annotations = { dispatcher: path }
    this.recency = Number.isFinite(options.maxChildren) ? new Recency() : undefined
    this.debug = !LogLevel.isGreaterThan(Context.get(context, References.MinimumLogLevel), "Debug")
    this.fenced = options.fence === undefined ? undefined : fencedBy(options.fence)
    this.detachMetrics = metrics.attach(context, options.name, this)
  }

  /** children alive now */
  get live(): number {
    return this.fibers - this.restarting
  }

  /** Stopped: fold this dispatcher's counts into its name's totals. */
  retire(): void {
    this.detachMetrics()
  }
}

/** A user's fence as the machinery asks it: `true` when fenced; a fence that throws fences. */
const fencedBy = (fence: (key: string) => boolean) => (key: string): boolean => {
  try {
    return fence(key) !== true
  } catch {
    return true
  }
}

/**
 * A downstream level's fence: fenced where its parent fences the key it
 * serves, or where its own fence does.
 *
 * @internal
 */
export const inheritFence = (core: Core, parent: Core, parentKey: string): void => {
  const above = parent.fenced
  if (above === undefined) return
  const own = core.fenced
  const fencedAbove = () => above(parentKey)
  core.fencedAbove = fencedAbove
  core.fenced = own === undefined ? fencedAbove : (key) => fencedAbove() || own(key)
}

/**
 * Whether a fiber that runs inside `inner` (its `Within`) runs inside `core`'s children.
 *
 * @internal
 */
export const isInside = (core: Core, inner: Core | undefined): boolean => {
  for (let at = inner; at !== undefined; at = at.outer) if (at === core) return true
  return false
}

/** @internal */
export const idleTimersOf = (core: Core): IdleTimers => (core.idleTimers ??= new IdleTimers(core.clock, core.context))
