/**
 * What a runner's death does to the requests it held, on real processes and
 * real PostgreSQL: volatile ones are answered `Unavailable` within a bound and
 * never run a second time elsewhere; persisted ones are run again by the
 * key's next owner and answered (at least once), with the same request id.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { lives, overlaps, runsByCall, runTwice, showOverlap } from "./support/check.js"
import { client, warmUp } from "./support/client.js"
import { harness } from "./support/cluster.js"
import { byTag, load, measure } from "./support/load.js"
import { now } from "./tracked.js"

const keys = Array.from({ length: 24 }, (_, i) => `d${i}`)

describe("a runner's death", () => {
  it.live("volatile requests it held are answered Unavailable within a bound, and run nowhere else", () =>
    Effect.gen(function*() {
      const h = yield* harness
      const [r1] = yield* Effect.all([h.start("r1"), h.start("r2")], { concurrency: "unbounded" })
      const { volatile } = yield* client(h.db.url)
      yield* warmUp(volatile, keys)
      // every key busy 2 s per request, called every second: each child runs one and has more waiting
      const calls = yield* load(volatile, { keys, every: 1000, ms: 2000 })
      yield* Effect.sleep("4 seconds")
      r1!.kill()
      const at = r1!.killedAt!
      // no more calls: those in flight are answered, by the survivor or with the dead runner's Unavailable
      const hung = yield* calls.stop(30_000)
      const runs = yield* runsByCall(h.sql)
      const twice = yield* runTwice(h.sql)
      // the calls the dead runner held (running or waiting there): sent before its death, not answered
      // before it, and not by the survivor
      const held = calls.outcomes.filter((o) => o.sentAt < at && o.doneAt >= at && o.served?.runner !== "r2")
      const ranThere = held.filter((o) => (runs.get(o.id) ?? []).some((r) => r.runner === "r1")).length
      const latency = held.map((o) => o.doneAt - at).sort((a, b) => a - b)
      const found = overlaps(yield* lives(h.sql), h.runners, now())
      yield* measure("volatile held by a killed runner", {
        held: held.length,
        ranThere,
        tags: byTag(held),
        answeredAfterDeath: [latency[0], latency[Math.floor(latency.length / 2)], latency[latency.length - 1]],
        all: byTag(calls.outcomes),
        hung: hung.length,
        twice: twice.length
      })
      assert.deepStrictEqual(hung, [])
      assert.isAbove(ranThere, 0, "the runner was running requests when it died")
      for (const o of held) assert.strictEqual(o.tag, "Unavailable", `${o.id} (${o.key}) was answered ${o.tag}`)
      assert.isBelow(latency[latency.length - 1]!, 2000)
      assert.deepStrictEqual(twice, [])
      assert.deepStrictEqual(found.map(showOverlap), [])
    }).pipe(Effect.scoped), 120_000)

  it.live("persisted requests it held are run again by the key's next owner and answered, with the same request id", () =>
    Effect.gen(function*() {
      const h = yield* harness
      const [r1] = yield* Effect.all([h.start("r1"), h.start("r2")], { concurrency: "unbounded" })
      const { stored } = yield* client(h.db.url)
      yield* warmUp(stored, keys)
      const calls = yield* load(stored, { keys, every: 1000, ms: 1500 })
      yield* Effect.sleep("4 seconds")
      r1!.kill()
      const at = r1!.killedAt!
      yield* Effect.sleep("14 seconds")
      const hung = yield* calls.stop(60_000)
      const runs = yield* runsByCall(h.sql)
      const held = calls.outcomes.filter((o) =>
        o.sentAt < at && o.doneAt >= at && (runs.get(o.id) ?? []).some((r) => r.runner === "r1" && r.begun_at < at)
      )
      const rerun = held.filter((o) => (runs.get(o.id) ?? []).length > 1)
      const sameIds = rerun.every((o) => new Set(runs.get(o.id)!.map((r) => r.request_id)).size === 1)
      const latency = held.map((o) => o.doneAt - at).sort((a, b) => a - b)
      const found = overlaps(yield* lives(h.sql), h.runners, now())
      yield* measure("persisted held by a killed runner", {
        held: held.length,
        rerun: rerun.length,
        tags: byTag(held),
        answeredAfterDeath: [latency[0], latency[Math.floor(latency.length / 2)], latency[latency.length - 1]],
        all: byTag(calls.outcomes),
        hung: hung.length
      })
      assert.deepStrictEqual(hung, [])
      assert.isAbove(held.length, 0, "the runner held requests when it died")
      for (const o of held) {
        assert.strictEqual(o.tag, "ok", `${o.id} (${o.key}) was answered ${o.tag}`)
        assert.notStrictEqual(o.served?.runner, "r1")
      }
      assert.isTrue(sameIds, "a request run twice carries the same request id both times")
      assert.strictEqual(calls.outcomes.filter((o) => o.tag !== "ok").length, 0)
      assert.deepStrictEqual(found.map(showOverlap), [])
    }).pipe(Effect.scoped), 180_000)
})
