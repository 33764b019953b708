/**
 * One live child per key in the whole cluster, also while shards move: real
 * runner processes (`tracked-runner.ts`) under steady load from this process
 * (a client-only member), while a runner is killed, stopped, frozen, or
 * joins. The children record their lives in the test's database; two lives of
 * one key that overlap fail the test (see `support/check.ts`).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { lives, overlaps, runTwice, showOverlap } from "./support/check.js"
import { client, warmUp } from "./support/client.js"
import { harness } from "./support/cluster.js"
import { byTag, failover, load, measure } from "./support/load.js"
import { now } from "./tracked.js"

const keys = Array.from({ length: 40 }, (_, i) => `k${i}`)
/** keys given a burst of slow requests just before a freeze */
const slow = new Set(keys.slice(0, 12))

describe("one live child per key", () => {
  it.live("SIGKILL of a runner under load", () =>
    Effect.gen(function*() {
      const h = yield* harness
      const [r1] = yield* Effect.all([h.start("r1"), h.start("r2")], { concurrency: "unbounded" })
      const { volatile } = yield* client(h.db.url)
      yield* warmUp(volatile, keys)
      const calls = yield* load(volatile, { keys, every: 300, ms: 10 })
      yield* Effect.sleep("4 seconds")
      r1!.kill()
      const at = r1!.killedAt!
      yield* Effect.sleep("16 seconds")
      const hung = yield* calls.stop(20_000)
      const all = yield* lives(h.sql)
      const found = overlaps(all, h.runners, now())
      const twice = yield* runTwice(h.sql)
      const fo = failover(calls.outcomes, "r1", at)
      const after = calls.outcomes.filter((o) => o.sentAt >= at)
      yield* measure("SIGKILL", {
        failover: fo,
        tags: byTag(calls.outcomes),
        unavailableLatency: after.filter((o) => o.tag === "Unavailable").map((o) => Math.round(o.doneAt - o.sentAt)).sort((a, b) => a - b).filter((_, i, a) => i % Math.max(1, Math.floor(a.length / 10)) === 0),
        hung: hung.length,
        overlaps: found.map(showOverlap),
        twice
      })
      assert.deepStrictEqual(hung, [])
      // every call answered, once
      assert.strictEqual(calls.outcomes.length, calls.sent())
      assert.strictEqual(new Set(calls.outcomes.map((o) => o.id)).size, calls.sent())
      assert.deepStrictEqual(found.map(showOverlap), [])
      assert.deepStrictEqual(twice, [])
      // its keys answer elsewhere within shardLockExpiration (9 s here), plus slack for a loaded machine
      assert.strictEqual(fo.moved, fo.keys)
      assert.isBelow(fo.max, 9000 + 3000)
    }).pipe(Effect.scoped), 120_000)

  it.live("SIGTERM of a runner under load: it drains, releases its shards and exits 0; its keys answer elsewhere", () =>
    Effect.gen(function*() {
      const h = yield* harness
      const [r1] = yield* Effect.all([h.start("r1"), h.start("r2")], { concurrency: "unbounded" })
      const { stored, volatile } = yield* client(h.db.url)
      const storedKeys = keys.slice(0, 12).map((k) => `p${k}`)
      yield* warmUp(volatile, keys)
      yield* warmUp(stored, storedKeys)
      const calls = yield* load(volatile, { keys, every: 300, ms: 10 })
      // persisted calls slower than they come: their children have requests waiting at the stop
      const storedCalls = yield* load(stored, { keys: storedKeys, every: 400, ms: 300, prefix: "p" })
      yield* Effect.sleep("4 seconds")
      r1!.term()
      const at = r1!.termAt!
      const code = yield* r1!.exited.pipe(Effect.timeout("30 seconds"))
      const exitedAfter = now() - at
      yield* Effect.sleep("6 seconds")
      const hung = yield* calls.stop(20_000)
      const storedHung = yield* storedCalls.stop(30_000)
      const all = yield* lives(h.sql)
      const found = overlaps(all, h.runners, now())
      const twice = yield* runTwice(h.sql)
      const fo = failover(calls.outcomes, "r1", at)
      // what r1 held as it stopped: sent before, answered after
      const held = [...calls.outcomes, ...storedCalls.outcomes].filter((o) => o.sentAt < at && o.doneAt >= at)
      yield* measure("SIGTERM", {
        code,
        exitedAfter,
        failover: fo,
        tags: byTag(calls.outcomes),
        stored: byTag(storedCalls.outcomes),
        heldAtStop: byTag(held),
        hung: hung.length + storedHung.length,
        overlaps: found.map(showOverlap)
      })
      assert.strictEqual(code, 0)
      assert.deepStrictEqual([...hung, ...storedHung], [])
      assert.strictEqual(calls.outcomes.length + storedCalls.outcomes.length, calls.sent() + storedCalls.sent())
      assert.deepStrictEqual(found.map(showOverlap), [])
      // volatile: run once at most; persisted: every call answered, none lost
      assert.deepStrictEqual(twice.filter((t) => !t.call.startsWith("p")), [])
      assert.deepStrictEqual(byTag(storedCalls.outcomes), { ok: storedCalls.outcomes.length })
      // its keys answer elsewhere, soon (the target is 1 s; slack for a loaded machine)
      assert.strictEqual(fo.moved, fo.keys)
      assert.isBelow(fo.max, 3000)
    }).pipe(Effect.scoped), 120_000)

  it.live("SIGSTOP past shardLockExpiration, then SIGCONT, under load", () =>
    Effect.gen(function*() {
      const h = yield* harness
      const [r1] = yield* Effect.all([h.start("r1"), h.start("r2")], { concurrency: "unbounded" })
      const { volatile } = yield* client(h.db.url)
      yield* warmUp(volatile, keys)
      const calls = yield* load(volatile, { keys, every: 300, ms: 10 })
      yield* Effect.sleep("4 seconds")
      // requests waiting in children's mailboxes as the runner freezes: on SIGCONT, each child
      // finishes the one it runs and would take the next
      for (const key of slow) for (let i = 0; i < 3; i++) yield* calls.callNow(key, 300)
      yield* Effect.sleep("150 millis")
      r1!.freeze()
      const at = r1!.frozenAt!
      yield* Effect.sleep("13 seconds")
      r1!.resume()
      yield* Effect.sleep("8 seconds")
      const hung = yield* calls.stop(20_000)
      const all = yield* lives(h.sql)
      const found = overlaps(all, h.runners, now())
      const twice = yield* runTwice(h.sql)
      const fo = failover(calls.outcomes, "r1", at)
      const r1Lives = all.filter((l) => l.runner === "r1" && l.started_at < at)
      const endedAfterResume = r1Lives.map((l) => (l.ended_at ?? Infinity) - r1!.resumedAt!).sort((a, b) => a - b)
      const begunAfterResume = r1Lives.filter((l) => (l.last_begun_at ?? 0) > r1!.resumedAt!).map((l) => l.child)
      yield* measure("SIGSTOP", {
        failover: fo,
        tags: byTag(calls.outcomes),
        hung: hung.length,
        overlaps: found.length,
        overlapMs: found.map((o) => Math.round(o.ms)).sort((a, b) => a - b),
        frozenOverlaps: found.filter((o) => o.frozen).length,
        // a handler running as the runner froze finishes after SIGCONT: how long after the successor started
        finishedAfterSuccessor: Math.max(0, ...found.map((o) => (o.first.last_done_at ?? 0) - o.second.started_at)),
        finishedAfterResume: Math.max(0, ...found.map((o) => (o.first.last_done_at ?? 0) - r1!.resumedAt!)),
        endedAfterResume: [endedAfterResume[0], endedAfterResume[endedAfterResume.length - 1]],
        begunAfterResume,
        twice
      })
      assert.deepStrictEqual(hung, [])
      // every call answered, once
      assert.strictEqual(calls.outcomes.length, calls.sent())
      assert.strictEqual(new Set(calls.outcomes.map((o) => o.id)).size, calls.sent())
      assert.deepStrictEqual(twice, [])
      // its children could not end while frozen: they overlap their successors, and only those
      assert.deepStrictEqual(found.filter((o) => !o.frozen).map(showOverlap), [])
      for (const o of found) {
        // fenced: it began no request once its successor lived (none after SIGCONT either)
        assert.isBelow(o.first.last_begun_at ?? 0, o.second.started_at, showOverlap(o))
        // and it ended soon after SIGCONT
        assert.isBelow(o.first.ended_at! - r1!.resumedAt!, 3000, showOverlap(o))
      }
      assert.deepStrictEqual(begunAfterResume, [])
    }).pipe(Effect.scoped), 120_000)

  it.live("a runner joins under load", () =>
    Effect.gen(function*() {
      const h = yield* harness
      yield* Effect.all([h.start("r1"), h.start("r2")], { concurrency: "unbounded" })
      const { volatile } = yield* client(h.db.url)
      yield* warmUp(volatile, keys)
      const calls = yield* load(volatile, { keys, every: 300, ms: 10 })
      yield* Effect.sleep("4 seconds")
      const at = now()
      yield* h.start("r3")
      const readyAfter = now() - at
      yield* Effect.sleep("10 seconds")
      const hung = yield* calls.stop(20_000)
      const all = yield* lives(h.sql)
      const found = overlaps(all, h.runners, now())
      const twice = yield* runTwice(h.sql)
      const served = new Map<string, string>()
      for (const o of [...calls.outcomes].sort((a, b) => a.doneAt - b.doneAt)) if (o.served) served.set(o.key, o.served.runner)
      const share: Record<string, number> = {}
      for (const r of served.values()) share[r] = (share[r] ?? 0) + 1
      const firstR3 = Math.min(...calls.outcomes.filter((o) => o.served?.runner === "r3").map((o) => o.doneAt)) - at
      yield* measure("join", { readyAfter, firstR3, share, tags: byTag(calls.outcomes), hung: hung.length, overlaps: found.map(showOverlap), twice })
      // shards rebalanced onto the newcomer
      assert.isAbove(share["r3"] ?? 0, 0)
      assert.deepStrictEqual(hung, [])
      // every call answered, once
      assert.strictEqual(calls.outcomes.length, calls.sent())
      assert.strictEqual(new Set(calls.outcomes.map((o) => o.id)).size, calls.sent())
      assert.deepStrictEqual(found.map(showOverlap), [])
      assert.deepStrictEqual(twice, [])
    }).pipe(Effect.scoped), 120_000)
})
