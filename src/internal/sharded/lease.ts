/**
 * A runner's lease on its shards, read from the engine's own lock refreshes.
 *
 * With PostgreSQL the engine holds each shard as an advisory lock on one
 * session, and sets that session's `idle_session_timeout` to
 * `shardLockExpiration`: a runner that stops talking to the server (frozen by
 * SIGSTOP, a long GC pause, a starved CPU) loses its locks that long after its
 * last statement, and only then can another runner take them. So a shard whose
 * lock was last confirmed by a refresh that *started* at `t` cannot be owned by
 * anyone else before `t + shardLockExpiration`. The engine itself only learns
 * of a loss at its next refresh (a frozen runner, once resumed, went on serving
 * for ~0.5 s in the measurements of `cluster-engine.md`); the lease lets a
 * runner stop serving a shard as soon as its own clock says the lock may be
 * gone, without a database round trip.
 *
 * Pure Effect: loaded with the package, it never loads cluster code.
 */
import { type Clock, Context } from "effect"

/** What part of `shardLockExpiration` a lease lasts: the rest absorbs clock drift and reaction time. */
export const leaseShare = 0.8

/** @internal */
export class Lease {
  /** shard id (`group:n`) -> `now` at the start of the last refresh or acquisition that confirmed it */
  private readonly confirmed = new Map<string, number>()
  /** how long after a confirmation the lease holds */
  readonly validFor: number
  /** the last reading of `now`, and the monotonic time it was taken at */
  private last = 0
  private lastMonotonic: number | undefined = undefined

  /**
   * Bumped whenever a shard's lease ends or shortens: a reader that cached
   * `until` (`Held`) reads it again then; a confirmation that extends it
   * needs no bump (the cached, earlier end is only conservative).
   */
  version = 0

  constructor(readonly expirationMillis: number) {
    this.validFor = Math.floor(expirationMillis * leaseShare)
  }

  /**
   * The time the lease is kept in, in milliseconds: it advances with the
   * Clock's monotonic time, so a wall clock set back (NTP stepping it, a hand)
   * does not stretch a lease; and it catches up with the wall clock where that
   * is ahead, so time the monotonic clock did not count (a suspended VM, on
   * some hosts) does not either. It never goes back.
   */
  now(clock: Clock.Clock): number {
    const monotonic = Number(clock.monotonicTimeNanosUnsafe()) / 1_000_000
    const wall = clock.currentTimeMillisUnsafe()
    const advanced = this.lastMonotonic === undefined ? wall : this.last + (monotonic - this.lastMonotonic)
    this.lastMonotonic = monotonic
    this.last = wall > advanced ? wall : advanced
    return this.last
  }

  /** These shards were confirmed by a storage call that started at `startedAt`. */
  confirm(shards: Iterable<{ toString(): string }>, startedAt: number): void {
    for (const shard of shards) {
      const id = shard.toString()
      const before = this.confirmed.get(id)
      if (before !== undefined && startedAt < before) this.version++
      this.confirmed.set(id, startedAt)
    }
  }

  /** The shard was released, or a refresh did not return it: no lease from now on. */
  drop(shard: { toString(): string }): void {
    if (this.confirmed.delete(shard.toString())) this.version++
  }

  dropAll(): void {
    this.confirmed.clear()
    this.version++
  }

  /** Does this runner's lease on the shard still hold at `now`? */
  holds(shard: string, now: number): boolean {
    const at = this.confirmed.get(shard)
    return at !== undefined && now < at + this.validFor
  }

  /** Does the lease on any shard hold at `now`? */
  holdsAny(now: number): boolean {
    for (const at of this.confirmed.values()) if (now < at + this.validFor) return true
    return false
  }

  /** Until when (`now`) the shard's lease holds; `-Infinity` when there is none. */
  until(shard: string): number {
    const at = this.confirmed.get(shard)
    return at === undefined ? -Infinity : at + this.validFor
  }
}

/**
 * One shard's lease as a hot path reads it: the end of the lease is cached and
 * read again only once it has passed or the lease changed (`Lease.version`),
 * so a request checks two numbers, not the lease's table.
 *
 * @internal
 */
export class Held {
  private until = -Infinity
  private version = -1

  constructor(readonly lease: Lease, readonly shard: string) {}

  /** Does the lease on the shard hold now? */
  holds(clock: Clock.Clock): boolean {
    return this.at(this.lease.now(clock))
  }

  /** Does the lease on the shard hold at `now` (`Lease.now`)? */
  at(now: number): boolean {
    if (now < this.until && this.version === this.lease.version) return true
    this.version = this.lease.version
    this.until = this.lease.until(this.shard)
    return now < this.until
  }
}

/**
 * The lease of the runner in this process, when its runner storage is the one
 * `Sharded.layerPostgres` builds; `undefined` with other storage (then only
 * the engine's own view of its shards applies).
 *
 * @internal
 */
export const ShardLease = Context.Reference<Lease | undefined>("effect-dispatcher/Sharded/ShardLease", {
  defaultValue: () => undefined
})
