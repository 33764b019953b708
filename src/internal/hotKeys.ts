/**
 * Hot and stuck keys: each live key's figures at every level of a tree, read
 * from what the dispatcher keeps anyway (its mailbox, the request its `serve`
 * child holds, its restart state, the count of requests placed for it), and
 * the top k of them by one measure with a bounded heap: O(n log k), no sort
 * of all keys.
 *
 * Rates cost nothing per request: each entry already counts the requests
 * placed for it (`seq`), so a rate is the difference between two looks at the
 * tree, kept in a `RateSampler` by whoever asks (weakly, so a key that goes
 * is not held).
 */
import { Duration, Effect, Schema, type SchemaIssue } from "effect"
import type * as Dispatcher from "../Dispatcher.js"
import { InvalidOptions } from "../DispatchError.js"
import type { Core } from "./core.js"
import { type Entry, Gone } from "./entry.js"
import { headOf } from "./effectInternals.js"
import { describeIssue, duration, durationOf, positiveInt, show } from "./options.js"

/** @internal */
export type Measure = "depth" | "oldest" | "rate" | "failures"

// -----------------------------------------------------------------------------
// Options
// -----------------------------------------------------------------------------

/**
 * `hotKeys` options after validation: durations in millis.
 *
 * @internal
 */
export interface ResolvedHotKeys {
  readonly top: number
  readonly by: Measure
  /** millis; `undefined`: each level's `requestTimeout` (no key is stuck where there is none) */
  readonly stuckAfter: number | undefined
  /** millis over which rates are measured */
  readonly window: number
}

/** @internal */
export const defaultWindow = 1_000

const HotKeysSchema = Schema.Struct({
  top: positiveInt("a number of keys"),
  by: Schema.Literals(["depth", "oldest", "rate", "failures"]),
  stuckAfter: Schema.optional(duration("a duration of zero or more (e.g. \"5 seconds\")", (ms) => ms >= 0)),
  window: Schema.optional(duration("a positive duration (e.g. \"1 second\")", (ms) => ms > 0 && Number.isFinite(ms)))
})

const decodeHotKeys = Schema.decodeUnknownExit(HotKeysSchema, { onExcessProperty: "error", errors: "first" })

const millisOf = (input: unknown): number => Duration.toMillis(durationOf(input)!)

/**
 * Validate `hotKeys` options: resolved, or the `InvalidOptions` naming the bad one and its value.
 *
 * @internal
 */
export const resolveHotKeys = (options: unknown): ResolvedHotKeys | InvalidOptions => {
  if (typeof options !== "object" || options === null) {
    return new InvalidOptions({ message: `hotKeys options: expected an object, got ${show(options)}` })
  }
  const decoded = decodeHotKeys(options)
  if (decoded._tag === "Failure") {
    const reason = decoded.cause.reasons[0]
    const issue = reason?._tag === "Fail" ? (reason.error as { issue: SchemaIssue.Issue }).issue : undefined
    return new InvalidOptions({
      message: issue === undefined
        ? `hotKeys options: ${show(options)} are invalid`
        : describeIssue(issue, options, Object.keys(HotKeysSchema.fields))
    })
  }
  const o = decoded.value
  const stuckAfter = o.stuckAfter === undefined ? undefined : millisOf(o.stuckAfter)
  return {
    top: o.top,
    by: o.by,
    stuckAfter,
    window: o.window === undefined ? defaultWindow : millisOf(o.window)
  }
}

// -----------------------------------------------------------------------------
// Rates: two looks at the tree
// -----------------------------------------------------------------------------

/**
 * One look at a level: its entries in registry order and the count of
 * requests placed for each, and the level's accepted count. Arrays, not
 * maps: the next walk goes through the registry in the same order (a `Map`
 * keeps insertion order; a forgotten key leaves it, marked `Gone`; a new one
 * comes last), so it finds each key's count with a cursor, in O(1) and with
 * no hashing. It holds the entries it saw until the next look replaces it.
 *
 * @internal
 */
export class LevelLook {
  readonly entries: Array<Entry>
  readonly seqs: Float64Array
  constructor(readonly accepted: number, size: number) {
    this.entries = new Array(size)
    this.seqs = new Float64Array(size)
  }
}

/**
 * One look at a tree, level by level, at `at`.
 *
 * @internal
 */
export class RateLook {
  readonly levels = new Map<Core, LevelLook>()
  constructor(readonly at: number) {}
}

/**
 * The looks rates are measured from: the newest and the one before it, so a
 * rate is always over at least one window once two looks exist. A look older
 * than ten windows is dropped: a rate over an hour is no recent rate.
 *
 * @internal
 */
export class RateSampler {
  private older: RateLook | undefined = undefined
  private newer: RateLook | undefined = undefined

  /**
   * The look to measure from at `now` (`undefined`: none yet), and the look to
   * record during this walk, if one is due (at least `window` after the newest).
   */
  plan(now: number, window: number): { readonly from: RateLook | undefined; readonly record: RateLook | undefined } {
    const newer = this.newer
    if (newer === undefined || now - newer.at > 10 * window) {
      this.older = this.newer = undefined
      return { from: undefined, record: new RateLook(now) }
    }
    if (now - newer.at >= window) return { from: newer, record: new RateLook(now) }
    return { from: this.older ?? newer, record: undefined }
  }

  /** The look just recorded is the newest. */
  commit(look: RateLook): void {
    this.older = this.newer
    this.newer = look
  }

  /** Forget both looks (and the entries they hold): nobody is looking any more. */
  reset(): void {
    this.older = this.newer = undefined
  }

  /**
   * How long until rates can be measured over a whole window: 0 now,
   * `undefined` if there is no recent look at all (take one, then wait a window).
   */
  waitFor(now: number, window: number): number | undefined {
    const newer = this.newer
    if (newer === undefined || now - newer.at > 10 * window) return undefined
    if (this.older !== undefined || now - newer.at >= window) return 0
    return newer.at + window - now
  }
}

/** Requests per second from `base` (at `from`) to `count` now. */
const perSecond = (count: number, base: number, from: number, now: number): number =>
  now > from ? ((count - base) * 1000) / (now - from) : 0

// -----------------------------------------------------------------------------
// The walk
// -----------------------------------------------------------------------------

/**
 * One key's figures as read during a walk; made into an object only when it
 * makes one of the lists.
 *
 * @internal
 */
export class Sighting implements Dispatcher.KeyFigures {
  constructor(
    /** the level serving it */
    readonly core: Core,
    readonly key: string,
    readonly path: string,
    readonly depth: number,
    readonly oldest: number,
    readonly rate: number,
    readonly failures: number,
    readonly restarts: number,
    readonly stuck: boolean
  ) {}

  /** The public figures, without the level. */
  toFigures(): Dispatcher.KeyFigures {
    return {
      key: this.key,
      path: this.path,
      depth: this.depth,
      oldest: this.oldest,
      rate: this.rate,
      failures: this.failures,
      restarts: this.restarts,
      stuck: this.stuck
    }
  }
}

/**
 * What one walk asks: when it is, which stuck threshold, which look rates are
 * measured from and which look to record.
 *
 * @internal
 */
export interface WalkOptions {
  readonly now: number
  readonly stuckAfter: number | undefined
  readonly from: RateLook | undefined
  readonly record: RateLook | undefined
}

/**
 * Visit every level of the tree under `root` (depth first, a level before the
 * levels below it) and every live key of each, with its figures read into
 * `scratch`. `onLevel` is told each level, its depth in the tree and its
 * parent key's entry (none at the root); `onKey`, each key.
 *
 * @internal
 */
export const walk = (
  root: Core,
  options: WalkOptions,
  onLevel: (core: Core, depth: number, parent: Entry | undefined, rate: number) => void,
  onKey: (entry: Entry, core: Core, reading: Reading) => void
): void => {
  const reading = new Reading()
  const { now, from, record } = options
  const visit = (core: Core, depth: number, parent: Entry | undefined, timeout: number) => {
    const own = core.options.requestTimeout
    const effective = own !== undefined && own < timeout ? own : timeout
    const threshold = options.stuckAfter ?? effective
    const before = from?.levels.get(core)
    const look = record === undefined ? undefined : new LevelLook(core.accepted, core.registry.size)
    if (look !== undefined) record!.levels.set(core, look)
    onLevel(core, depth, parent, from === undefined ? 0 : perSecond(core.accepted, before?.accepted ?? 0, from.at, now))
    const seen = before?.entries
    const seenSeqs = before?.seqs
    let cursor = 0
    // (the walk is synchronous: the registry does not change under it)
    let at = 0
    for (const entry of core.registry.values()) {
      // this key's count at the last look: found in order, skipping the keys forgotten since; a new key had none
      let prior = 0
      if (seen !== undefined) {
        while (cursor < seen.length && seen[cursor] !== entry && seen[cursor]!.phase === Gone) cursor++
        if (cursor < seen.length && seen[cursor] === entry) prior = seenSeqs![cursor++]!
      }
      read(entry, now, from, prior, threshold, reading)
      if (look !== undefined) {
        look.entries[at] = entry
        look.seqs[at] = entry.seq
      }
      at++
      onKey(entry, core, reading)
      const below = entry.extra?.downstream
      if (below !== undefined) visit(below, depth + 1, entry, effective)
    }
  }
  visit(root, 0, undefined, Infinity)
}

/**
 * One key's figures, read in place (one object per walk, not per key).
 *
 * @internal
 */
export class Reading {
  depth = 0
  oldest = 0
  rate = 0
  failures = 0
  restarts = 0
  stuck = false

  value(by: Measure): number {
    switch (by) {
      case "depth":
        return this.depth
      case "oldest":
        return this.oldest
      case "rate":
        return this.rate
      case "failures":
        return this.failures
    }
  }
}

/**
 * A key's figures: what waits for it (its mailbox, a revived key's next one,
 * and what a `serve` child took and has not started), the age of the oldest
 * request it has (the one its child is handling, else the head of its
 * mailbox, answered or not: a request the child has not got to, deadline
 * passed or not, is what makes a key stuck), its rate, its consecutive
 * failures and its successors.
 */
const read = (
  entry: Entry,
  now: number,
  from: RateLook | undefined,
  prior: number,
  threshold: number,
  out: Reading
): void => {
  const held = entry.held
  const mailbox = entry.mailbox
  const extra = entry.extra
  const next = extra === undefined ? undefined : extra.next
  const holding = held === undefined || held.heldCount === undefined ? 0 : held.heldCount()
  let depth = mailbox.messages.length
  if (next !== undefined) depth += next.messages.length
  if (holding > 1) depth += holding - 1
  out.depth = depth
  let first = holding > 0 ? held!.firstHeld!() : undefined
  if (first === undefined && depth > 0) first = headOf(mailbox) ?? (next === undefined ? undefined : headOf(next))
  const oldest = first === undefined ? 0 : now - first.enqueuedAt
  out.oldest = oldest > 0 ? oldest : 0
  out.rate = from === undefined ? 0 : perSecond(entry.seq, prior, from.at, now)
  out.failures = extra === undefined ? 0 : extra.failures
  out.restarts = entry.incarnation > 1 ? entry.incarnation - 1 : 0
  out.stuck = first !== undefined && out.oldest > threshold
}

// -----------------------------------------------------------------------------
// Top k
// -----------------------------------------------------------------------------

/**
 * Whether (av, ap, ak) ranks before (bv, bp, bk): more of the measure first,
 * then by path, then by key (code-unit order), so every ranking is total.
 *
 * @internal
 */
export const ranksBefore = (av: number, ap: string, ak: string, bv: number, bp: string, bk: string): boolean =>
  av !== bv ? av > bv : ap !== bp ? ap < bp : ak < bk

/**
 * The k best of what it is offered, in a heap whose root is the worst of
 * them: an offer that does not beat the root costs one comparison, one that
 * does costs O(log k). Only keys with some of the measure (above 0) rank.
 *
 * @internal
 */
export class TopK {
  private readonly heap: Array<Sighting> = []
  constructor(readonly k: number, readonly by: Measure, readonly stuckOnly = false) {}

  /** Would a key with this reading make the list? */
  admits(reading: Reading, path: string, key: string): boolean {
    const value = reading.value(this.by)
    if (!(value > 0) || (this.stuckOnly && !reading.stuck)) return false
    if (this.heap.length < this.k) return true
    const worst = this.heap[0]!
    return ranksBefore(value, path, key, valueOf(worst, this.by), worst.path, worst.key)
  }

  /** Add one that `admits` accepted. */
  add(sighting: Sighting): void {
    const heap = this.heap
    if (heap.length < this.k) {
      heap.push(sighting)
      this.up(heap.length - 1)
    } else {
      heap[0] = sighting
      this.down(0)
    }
  }

  /** Best first. */
  sorted(): Array<Sighting> {
    const by = this.by
    return [...this.heap].sort((a, b) =>
      ranksBefore(valueOf(a, by), a.path, a.key, valueOf(b, by), b.path, b.key) ? -1 : 1
    )
  }

  /** a is worse than b: it ranks after it */
  private worse(a: Sighting, b: Sighting): boolean {
    return ranksBefore(valueOf(b, this.by), b.path, b.key, valueOf(a, this.by), a.path, a.key)
  }

  private up(i: number): void {
    const heap = this.heap
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!this.worse(heap[i]!, heap[parent]!)) return
      const t = heap[i]!
      heap[i] = heap[parent]!
      heap[parent] = t
      i = parent
    }
  }

  private down(i: number): void {
    const heap = this.heap
    for (;;) {
      const left = 2 * i + 1
      const right = left + 1
      let worst = i
      if (left < heap.length && this.worse(heap[left]!, heap[worst]!)) worst = left
      if (right < heap.length && this.worse(heap[right]!, heap[worst]!)) worst = right
      if (worst === i) return
      const t = heap[i]!
      heap[i] = heap[worst]!
      heap[worst] = t
      i = worst
    }
  }
}

const valueOf = (sighting: Dispatcher.KeyFigures, by: Measure): number => {
  switch (by) {
    case "depth":
      return sighting.depth
    case "oldest":
      return sighting.oldest
    case "rate":
      return sighting.rate
    case "failures":
      return sighting.failures
  }
}

/**
 * Offer one key's reading to every list; the sighting is made once, if any takes it.
 *
 * @internal
 */
export const offer = (lists: ReadonlyArray<TopK>, entry: Entry, core: Core, reading: Reading): void => {
  // an idle key (most of them) has none of any measure: it makes no list
  if (reading.depth === 0 && reading.oldest === 0 && reading.rate === 0 && reading.failures === 0) return
  let sighting: Sighting | undefined
  for (const list of lists) {
    if (!list.admits(reading, core.path, entry.key)) continue
    sighting ??= new Sighting(
      core,
      entry.key,
      core.path,
      reading.depth,
      reading.oldest,
      reading.rate,
      reading.failures,
      reading.restarts,
      reading.stuck
    )
    list.add(sighting)
  }
}

// -----------------------------------------------------------------------------
// Dispatcher.hotKeys, in process
// -----------------------------------------------------------------------------

/** A root's sampler for `hotKeys` by rate, kept on the root itself (the inspector keeps its own). */
const samplerOf = (root: Core): RateSampler => (root.rateSampler ??= new RateSampler())

/** One walk: the top k by `options.by`, recording a look at rates if one is due. */
const rankOnce = (root: Core, options: ResolvedHotKeys, sampler: RateSampler): Array<Dispatcher.KeyFigures> => {
  const now = root.clock.currentTimeMillisUnsafe()
  const { from, record } = sampler.plan(now, options.window)
  const list = new TopK(options.top, options.by)
  const lists = [list]
  walk(root, { now, stuckAfter: options.stuckAfter, from, record }, () => {}, (entry, core, reading) =>
    offer(lists, entry, core, reading))
  if (record !== undefined) sampler.commit(record)
  return list.sorted().map((sighting) => sighting.toFigures())
}

/**
 * The top k keys of the tree under `root`. By rate, a rate needs two looks a
 * window apart: the first call looks, waits one window (on the caller's
 * clock) and looks again; later calls measure from the last look at least a
 * window old, waiting only if there is none yet.
 *
 * @internal
 */
export const hotKeys: (
  root: Core,
  input: Dispatcher.HotKeysOptions
) => Effect.Effect<ReadonlyArray<Dispatcher.KeyFigures>> = Effect.fnUntraced(
  function*(root: Core, input: Dispatcher.HotKeysOptions) {
    const options = resolveHotKeys(input)
    if (options instanceof InvalidOptions) return yield* Effect.die(options)
    const sampler = samplerOf(root)
    if (options.by === "rate") {
      const wait = sampler.waitFor(root.clock.currentTimeMillisUnsafe(), options.window)
      if (wait === undefined) {
        rankOnce(root, options, sampler)
        yield* Effect.sleep(options.window)
      } else if (wait > 0) {
        yield* Effect.sleep(wait)
      }
    }
    return rankOnce(root, options, sampler)
  }
)

/**
 * Merge lists ranked by the same measure (from several handles, say the
 * runners of one process) into the top k of all of them.
 *
 * @internal
 */
export const mergeTop = (
  lists: ReadonlyArray<ReadonlyArray<Dispatcher.KeyFigures>>,
  top: number,
  by: Measure
): ReadonlyArray<Dispatcher.KeyFigures> =>
  lists.flat().sort((a, b) => ranksBefore(valueOf(a, by), a.path, a.key, valueOf(b, by), b.path, b.key) ? -1 : 1)
    .slice(0, top)
