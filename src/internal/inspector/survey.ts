/**
 * One look at a dispatcher tree for the inspector: every level's counters and
 * rate, the top keys by each measure and the stuck ones, the recent failures,
 * keys redacted before anything leaves. An in-process tree is read in one
 * walk (`hotKeys`' machinery, all lists at once); any other handle through
 * its `tree` and `hotKeys`.
 */
import { Cause, Clock, Effect } from "effect"
import * as Dispatcher from "../../Dispatcher.js"
import type { Core } from "../core.js"
import { Running, Stopping } from "../core.js"
import type { Entry } from "../entry.js"
import { type FailureRecord, watchFailures } from "../failures.js"
import { implementationOf } from "../handle.js"
import { type Measure, offer, RateSampler, type Sighting, TopK, walk } from "../hotKeys.js"
import { DispatcherImpl } from "../root.js"
import { stats as statsOf } from "../snapshots.js"
import type { ResolvedInspector } from "./options.js"
import {
  type DispatcherState,
  type FailureState,
  type KeyState,
  type LevelState,
  maxCauseLength,
  maxDispatchers,
  maxFailures,
  maxKeyLength,
  type StateType
} from "./state.js"

type Mutable<T> = { -readonly [K in keyof T]: T[K] extends object ? Mutable<T[K]> : T[K] }
type Level = Mutable<typeof LevelState.Type>

/** A failure kept, and once sent, as it was shown. */
interface Failure {
  readonly record: FailureRecord
  readonly level: ShownLevel
  shown: typeof FailureState.Type | undefined
}

/** A level as it may be shown: its path, keys redacted, and the keys above it (raw, shown). */
interface ShownLevel {
  readonly path: string
  readonly keys: ReadonlyArray<readonly [string, string]>
}

const clip = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max - 1)}…` : text)

const round = (n: number): number => Math.round(n * 100) / 100

const measures: ReadonlyArray<Measure> = ["depth", "oldest", "rate", "failures"]

/** The levels and the dispatchers of one look, level by level as the walk meets them. */
class Tally {
  readonly levels: Array<Level> = []
  readonly dispatchers: Array<typeof DispatcherState.Type> = []
  omitted = 0

  add(depth: number, path: string, name: string, stats: Dispatcher.Stats, keys: number, rate: number): void {
    const level = (this.levels[depth] ??= {
      depth,
      names: [],
      dispatchers: 0,
      keys: 0,
      live: 0,
      accepted: 0,
      rate: 0,
      failures: 0,
      withdrawn: 0,
      rejected: { tooManyRequests: 0, unavailable: 0, requestTimeout: 0, childFailed: 0 }
    })
    level.dispatchers++
    level.keys += keys
    level.live += stats.live
    level.accepted += stats.accepted
    level.rate += rate
    level.failures += stats.failures
    level.withdrawn += stats.withdrawn
    level.rejected.tooManyRequests += stats.rejected.tooManyRequests
    level.rejected.unavailable += stats.rejected.unavailable
    level.rejected.requestTimeout += stats.rejected.requestTimeout
    level.rejected.childFailed += stats.rejected.childFailed
    if (!level.names.includes(name) && level.names.length < 8) level.names.push(name)
    if (this.dispatchers.length >= maxDispatchers) {
      this.omitted++
      return
    }
    this.dispatchers.push({
      path,
      name,
      depth,
      keys,
      live: stats.live,
      accepted: stats.accepted,
      rate: round(rate),
      failures: stats.failures,
      rejected: stats.rejected
    })
  }
}

/** A key's figures as they leave the process, under the path its level is shown by. */
const keyState = (k: Dispatcher.KeyFigures, key: string, path: string): typeof KeyState.Type => ({
  key,
  path,
  depth: k.depth,
  oldest: k.oldest,
  rate: round(k.rate),
  failures: k.failures,
  restarts: k.restarts,
  stuck: k.stuck
})

/** One look as `/state` answers it: what every kind of handle reports alike. */
const stateOf = (
  options: ResolvedInspector,
  tally: Tally,
  look: Pick<StateType, "name" | "status" | "at" | "keys" | "hot" | "stuck" | "failures">
): StateType => ({
  name: look.name,
  status: look.status,
  at: look.at,
  interval: options.interval,
  top: options.top,
  stuckAfter: options.stuckAfter ?? null,
  keys: look.keys,
  levels: tally.levels.map((level) => ({ ...level, rate: round(level.rate) })),
  dispatchers: tally.dispatchers,
  omittedDispatchers: tally.omitted,
  hot: look.hot,
  stuck: look.stuck,
  failures: look.failures
})

/**
 * The inspector's view of one handle: it keeps only what a look needs (the
 * rate sampler's last two looks, and the last `maxFailures` failures) and
 * reads everything else when asked.
 *
 * @internal
 */
export class Surveyor {
  /** the in-process root, when the handle is one: read in one walk */
  readonly core: Core | undefined
  private readonly sampler = new RateSampler()
  /** each level as it may be shown, from the last look */
  private levels = new WeakMap<Core, ShownLevel>()
  /** the last failures, oldest first, each shown (redacted, its cause in words) once it is first sent */
  private readonly failures: Array<Failure> = []
  private stopWatching: (() => void) | undefined = undefined
  /** a handle of another kind: its levels' accepted counts at the last look, to make rates */
  private lastLook: { readonly at: number; readonly accepted: Map<string, number> } | undefined = undefined
  /** the handle's stop was seen (for a handle of another kind, which has no state to read) */
  stopped = false

  constructor(readonly handle: Dispatcher.Dispatcher<any, any, any>, readonly options: ResolvedInspector) {
    const implementation = implementationOf(handle)
    this.core = implementation instanceof DispatcherImpl ? implementation.core : undefined
  }

  /** Keep the recent failures while the inspector is mounted. */
  start(): void {
    if (this.core !== undefined && this.stopWatching === undefined) {
      this.stopWatching = watchFailures(this.core, (record) => this.failed(record))
    }
  }

  stop(): void {
    this.stopWatching?.()
    this.stopWatching = undefined
    this.rest()
  }

  /** Nobody looks: drop the looks at rates (and the entries they hold); the next client's rates start over. */
  rest(): void {
    this.sampler.reset()
    this.lastLook = undefined
  }

  /** A key as it may leave the process. */
  key(key: string): string {
    const redact = this.options.redact
    if (redact === undefined) return clip(key, maxKeyLength)
    try {
      const shown = redact(key)
      return clip(typeof shown === "string" ? shown : String(shown), maxKeyLength)
    } catch {
      return "(redact failed)"
    }
  }

  /** One look: the whole state. */
  get snapshot(): Effect.Effect<StateType> {
    const core = this.core
    return core !== undefined ? Effect.sync(() => this.inProcess(core)) : this.generic
  }

  // ---------------------------------------------------------------------------
  // An in-process tree: one walk
  // ---------------------------------------------------------------------------

  private inProcess(root: Core): StateType {
    const options = this.options
    const now = root.clock.currentTimeMillisUnsafe()
    // a refresh about every interval: measure from the look at least half an interval old
    const { from, record } = this.sampler.plan(now, options.interval / 2)
    const lists = measures.map((by) => new TopK(options.top, by))
    const stuck = new TopK(options.top, "oldest", true)
    const all = [...lists, stuck]
    const tally = new Tally()
    let keys = 0
    const shownLevels = new WeakMap<Core, ShownLevel>()
    walk(root, { now, stuckAfter: options.stuckAfter, from, record }, (core, depth, parent, rate) => {
      const above = parent === undefined ? undefined : shownLevels.get(parent.core)
      const shownLevel: ShownLevel = above === undefined
        ? { path: core.path, keys: [] }
        : this.options.redact === undefined
        ? { path: core.path, keys: above.keys }
        : this.below(above, parent!.key, core)
      shownLevels.set(core, shownLevel)
      tally.add(depth, shownLevel.path, core.options.name, statsOf(core), core.registry.size, rate)
    }, (entry: Entry, core: Core, reading) => {
      keys++
      offer(all, entry, core, reading)
    })
    if (record !== undefined) this.sampler.commit(record)
    this.levels = shownLevels
    const shown = (sighting: Sighting) =>
      keyState(sighting, this.key(sighting.key), shownLevels.get(sighting.core)?.path ?? sighting.core.path)
    const [depth, oldest, rate, failures] = lists.map((list) => list.sorted().map(shown))
    return stateOf(options, tally, {
      name: root.options.name,
      status: root.state === Running ? "running" : root.state === Stopping ? "stopping" : "stopped",
      at: now,
      keys,
      hot: { depth: depth!, oldest: oldest!, rate: rate!, failures: failures! },
      stuck: stuck.sorted().map(shown),
      failures: this.failures.map((failure) => this.shown(failure)).reverse()
    })
  }

  /**
   * A failing child: kept as it is, with its level as it may be shown (found
   * now, while the level above still knows which key runs it). It costs the
   * failing child's disposal a push; the cause is put in words only if it is
   * sent.
   */
  private failed(record: FailureRecord): void {
    this.failures.push({ record, level: this.levelOf(record.core), shown: undefined })
    if (this.failures.length > maxFailures) this.failures.shift()
  }

  /** A failure as it may leave the process: redacted, its cause in words, clipped. */
  private shown(failure: Failure): typeof FailureState.Type {
    if (failure.shown !== undefined) return failure.shown
    const { level, record } = failure
    const key = this.key(record.key)
    let cause = Cause.pretty(record.cause)
    if (this.options.redact !== undefined) {
      // the key, and the keys of the levels above it, wherever the cause's text names them (longest first)
      const named = [[record.key, key] as const, ...level.keys].filter(([raw]) => raw.length > 0)
      named.sort((a, b) => b[0].length - a[0].length)
      for (const [raw, shown] of named) cause = cause.split(raw).join(shown)
    }
    return (failure.shown = {
      at: record.at,
      path: level.path,
      key,
      incarnation: record.incarnation,
      gaveUp: record.gaveUp,
      cause: clip(cause, maxCauseLength)
    })
  }

  /**
   * A level as it may be shown: its path with the keys redacted, and the keys
   * above it (raw, shown). From the last look, else found through the level
   * above (a level made since).
   */
  private levelOf(core: Core): ShownLevel {
    const known = this.levels.get(core)
    if (known !== undefined) return known
    const outer = core.outer
    let level: ShownLevel
    if (outer === undefined || core === this.core) {
      level = { path: core.path, keys: [] }
    } else {
      let parentKey: string | undefined
      for (const entry of outer.registry.values()) {
        if (entry.extra?.downstream === core) {
          parentKey = entry.key
          break
        }
      }
      level = this.below(this.levelOf(outer), parentKey, core)
    }
    this.levels.set(core, level)
    return level
  }

  /** The level `core`, run by the key `parentKey` of the level `above`. */
  private below(above: ShownLevel, parentKey: string | undefined, core: Core): ShownLevel {
    if (parentKey === undefined) return { path: `${above.path}/…/${core.options.name}`, keys: above.keys }
    const shown = this.key(parentKey)
    return { path: `${above.path}/${shown}/${core.options.name}`, keys: [...above.keys, [parentKey, shown]] }
  }

  // ---------------------------------------------------------------------------
  // Any other handle: its tree and its hotKeys
  // ---------------------------------------------------------------------------

  private get generic(): Effect.Effect<StateType> {
    const self = this
    const options = this.options
    return Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const tree = yield* Dispatcher.tree(self.handle)
      // the stuck ones are taken from the oldest: ask for more of those
      const ask = (by: Measure) =>
        Dispatcher.hotKeys(self.handle, {
          top: by === "oldest" ? options.top * 4 : options.top,
          by,
          ...(options.stuckAfter === undefined ? {} : { stuckAfter: `${options.stuckAfter} millis` }),
          window: `${Math.max(1, Math.round(options.interval / 2))} millis`
        })
      const [depth, oldest, rate, failures] = yield* Effect.forEach(measures, ask)
      const previous = self.lastLook
      const accepted = new Map<string, number>()
      const tally = new Tally()
      const displayPaths = new Map<string, string>()
      let keys = 0
      const visit = (t: Dispatcher.Tree, depth: number, display: string) => {
        displayPaths.set(t.path, display)
        accepted.set(t.path, t.stats.accepted)
        const rate = previous === undefined || now <= previous.at
          ? 0
          : ((t.stats.accepted - (previous.accepted.get(t.path) ?? 0)) * 1000) / (now - previous.at)
        keys += t.children.length
        tally.add(depth, display, t.name, t.stats, t.children.length, rate)
        for (const child of t.children) {
          if (child.downstream !== undefined) {
            visit(child.downstream, depth + 1, `${display}/${self.key(child.key)}/${child.downstream.name}`)
          }
        }
      }
      visit(tree, 0, tree.path)
      self.lastLook = { at: now, accepted }
      const shown = (k: Dispatcher.KeyFigures) =>
        keyState(k, self.key(k.key), displayPaths.get(k.path) ?? (options.redact === undefined ? k.path : "(redacted)"))
      return stateOf(options, tally, {
        name: tree.name,
        status: self.stopped ? "stopped" : "running",
        at: now,
        keys,
        hot: {
          depth: depth!.map(shown),
          oldest: oldest!.slice(0, options.top).map(shown),
          rate: rate!.map(shown),
          failures: failures!.map(shown)
        },
        stuck: oldest!.filter((k) => k.stuck).slice(0, options.top).map(shown),
        failures: []
      })
    })
  }
}

