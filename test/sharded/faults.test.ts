/**
 * Faults and bad input, on real processes and real PostgreSQL: a database
 * that cannot be reached at start, a runner whose connection to PostgreSQL is
 * cut (through a proxy this test controls), PostgreSQL itself restarted (a
 * throwaway server of this test's own, never the shared one), two runners
 * with different request Schemas (a rolling deploy), and processes started
 * with different engine timings.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Option } from "effect"
import { Dispatcher, Sharded } from "../../src/index.js"
import { timings } from "./fixture.js"
import { lives, overlaps, runTwice, showOverlap } from "./support/check.js"
import { client, warmUp } from "./support/client.js"
import { harness, harnessOn } from "./support/cluster.js"
import { byTag, load, measure } from "./support/load.js"
import { databaseOn, embeddedServer, freePort } from "./support/postgres.js"
import { proxy, through } from "./support/proxy.js"
import { now } from "./tracked.js"

/** What building a cluster member's layers fails with, and how long it took. */
const startFails = (options: Sharded.PostgresOptions) =>
  Effect.gen(function*() {
    const started = Date.now()
    const exit = yield* Effect.exit(Effect.scoped(Layer.build(Sharded.layerPostgres(options))))
    const error = exit._tag === "Failure" ? Option.getOrUndefined(Cause.findErrorOption(exit.cause)) : undefined
    return { exit, error, took: Date.now() - started }
  })

const keys = Array.from({ length: 24 }, (_, i) => `f${i}`)

describe("PostgreSQL unreachable at start", () => {
  it.live("nothing listens: a clear error naming the server and the database, at once, for a client and a runner", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const url = `postgres://postgres@127.0.0.1:${port}/appdb`
      for (const options of [{ url, clientOnly: true }, { url, runnerAddress: { host: "127.0.0.1", port: yield* freePort } }]) {
        const { error, took } = yield* startFails(options)
        assert.instanceOf(error, Sharded.DatabaseUnavailable)
        assert.deepStrictEqual([error.host, error.port, error.database], ["127.0.0.1", port, "appdb"])
        assert.strictEqual(
          error.message,
          `cannot reach PostgreSQL at 127.0.0.1:${port}, database "appdb": connection refused (nothing listens there) (ECONNREFUSED)`
        )
        assert.isBelow(took, 3000)
      }
    }))

  it.live("a server that drops every connection: it fails fast, after a handful of attempts, no retry storm", () =>
    Effect.gen(function*() {
      const dead = yield* freePort
      // accepts, then closes each connection at once (its upstream refuses)
      const dropper = yield* proxy({ host: "127.0.0.1", port: dead })
      const { error, took } = yield* startFails({ url: `postgres://postgres@127.0.0.1:${dropper.port}/appdb`, clientOnly: true })
      yield* Effect.sleep("2 seconds")
      yield* measure("unreachable at start", { took, attempts: dropper.accepted(), message: error?.message })
      assert.instanceOf(error, Sharded.DatabaseUnavailable)
      assert.include(error.message, `127.0.0.1:${dropper.port}, database "appdb"`)
      assert.isBelow(took, 3000)
      assert.isAtMost(dropper.accepted(), 3, "connection attempts, counting the two seconds after the failure")
    }).pipe(Effect.scoped))

  it.live("a database that does not exist, on a real server: named, with the server's reason", () =>
    Effect.gen(function*() {
      const h = yield* harness
      const url = new URL(h.db.url)
      url.pathname = "/no_such_database_here"
      const { error, took } = yield* startFails({ url: url.toString(), clientOnly: true })
      assert.instanceOf(error, Sharded.DatabaseUnavailable)
      assert.strictEqual(error.database, "no_such_database_here")
      assert.include(error.message, `database "no_such_database_here": the database does not exist (3D000)`)
      assert.isBelow(took, 3000)
    }).pipe(Effect.scoped))

  it.live("a runner process started against it exits at once, saying why", () =>
    Effect.gen(function*() {
      const h = yield* harness
      const port = yield* freePort
      const exit = yield* Effect.exit(h.start("lost", { url: `postgres://postgres@127.0.0.1:${port}/appdb`, readyWithin: 30_000 }))
      assert.isTrue(Exit.isFailure(exit))
      const said = exit._tag === "Failure" ? String(Cause.squash(exit.cause)) : ""
      assert.include(said, "exited (1) before READY")
      assert.include(said, `cannot reach PostgreSQL at 127.0.0.1:${port}, database "appdb"`)
    }).pipe(Effect.scoped))
})

describe("processes with different engine timings", () => {
  it.live("are refused at start, naming the setting, both values and the member; the same timings are accepted", () =>
    Effect.gen(function*() {
      const h = yield* harness
      const r1 = yield* h.start("r1")
      // a client with a 3 s lock expiry against runners on 9 s
      const { error, took } = yield* startFails({
        url: h.db.url,
        clientOnly: true,
        shardingConfig: { ...timings, shardLockExpiration: "3 seconds" }
      })
      assert.instanceOf(error, Sharded.SettingsMismatch)
      assert.deepStrictEqual(error.differences, [{
        setting: "shardLockExpiration",
        here: "3s",
        there: "9s",
        member: `runner 127.0.0.1:${r1.port}`
      }])
      assert.include(error.message, `shardLockExpiration is 3s here, 9s at runner 127.0.0.1:${r1.port}`)
      assert.isBelow(took, 5000)
      // a runner with other shard counts: refused too, before it takes any shard
      const exit = yield* Effect.exit(h.start("odd", { timings: { shardsPerGroup: 30 }, readyWithin: 30_000 }))
      const said = exit._tag === "Failure" ? String(Cause.squash(exit.cause)) : ""
      assert.include(said, "shardsPerGroup is 30 here, 60 at runner 127.0.0.1:")
      // the same timings: a member like the others
      const { volatile } = yield* client(h.db.url)
      assert.strictEqual((yield* Dispatcher.call(volatile, { key: "t", id: "t1", ms: 0 }).pipe(
        Effect.retry({ times: 100 })
      )).runner, "r1")
    }).pipe(Effect.scoped), 90_000)
})

describe("a rolling deploy", () => {
  it.live("runners with different request Schemas: the keys of the other version are typed SchemaMismatch; the rest goes on", () =>
    Effect.gen(function*() {
      const h = yield* harness
      yield* Effect.all([h.start("old"), h.start("new", { schema: "v2" })], { concurrency: "unbounded" })
      const { stored, volatile } = yield* client(h.db.url)
      const answers = yield* Effect.forEach(
        keys,
        (key, i) =>
          Dispatcher.call(volatile, { key, id: `r${i}`, ms: 0 }).pipe(
            // the runners may still be taking their shards
            Effect.retry({ times: 100, while: (e) => e._tag === "Unavailable" }),
            Effect.exit
          ),
        { concurrency: 8 }
      )
      const served = answers.filter(Exit.isSuccess).map((e) => e.value.runner)
      const mismatches = answers.flatMap((e) =>
        e._tag === "Failure" ? Option.toArray(Cause.findErrorOption(e.cause)) : []
      )
      yield* measure("rolling deploy", { served: served.length, mismatches: mismatches.length })
      assert.isAbove(served.length, 0)
      assert.isTrue(served.every((r) => r === "old"), "the old runner serves its keys")
      assert.isAbove(mismatches.length, 0)
      assert.strictEqual(served.length + mismatches.length, keys.length)
      for (const error of mismatches) {
        assert.instanceOf(error, Dispatcher.SchemaMismatch)
        assert.strictEqual(error.side, "request")
        assert.include(error.what, "the request did not decode on the runner")
      }
      // persisted: the same, stored as the answer
      const key = keys[answers.findIndex(Exit.isFailure)]!
      const storedError = yield* Effect.flip(Dispatcher.call(stored, { key, id: "s1", ms: 0 }))
      assert.instanceOf(storedError, Dispatcher.SchemaMismatch)
      // and the runners go on serving
      const again = yield* Dispatcher.call(volatile, { key: keys[answers.findIndex(Exit.isSuccess)]!, id: "r-again", ms: 0 })
      assert.strictEqual(again.runner, "old")
    }).pipe(Effect.scoped), 90_000)
})

describe("connections to PostgreSQL", () => {
  it.live("a runner whose connection is cut loses its shards to the other, and serves again once it is back", () =>
    Effect.gen(function*() {
      const h = yield* harness
      const db = new URL(h.db.url)
      const cutter = yield* proxy({ host: db.hostname, port: Number(db.port || 5432) })
      const [r1] = yield* Effect.all([h.start("r1", { url: through(h.db.url, cutter.port) }), h.start("r2")], {
        concurrency: "unbounded"
      })
      const { volatile } = yield* client(h.db.url)
      yield* warmUp(volatile, keys)
      const calls = yield* load(volatile, { keys, every: 300, ms: 10 })
      yield* Effect.sleep("3 seconds")
      yield* cutter.cut
      const cutAt = now()
      yield* Effect.sleep("12 seconds")
      yield* cutter.restore
      const restoredAt = now()
      yield* Effect.sleep("15 seconds")
      const hung = yield* calls.stop(20_000)
      const found = overlaps(yield* lives(h.sql), h.runners, now())
      const twice = yield* runTwice(h.sql)
      const during = calls.outcomes.filter((o) => o.sentAt >= cutAt && o.sentAt < restoredAt)
      const servedAgain = calls.outcomes.filter((o) => o.sentAt >= restoredAt && o.served?.runner === "r1")
      const backAfter = servedAgain.length === 0 ? NaN : Math.min(...servedAgain.map((o) => o.doneAt)) - restoredAt
      yield* measure("connection cut", {
        all: byTag(calls.outcomes),
        during: byTag(during),
        backAfter,
        hung: hung.length,
        overlaps: found.slice(0, 5).map(showOverlap),
        timeline: Array.from({ length: 30 }, (_, i) => {
          const bucket = calls.outcomes.filter((o) => o.sentAt >= cutAt + i * 1000 - 3000 && o.sentAt < cutAt + i * 1000 - 2000)
          return `${i - 3}:${bucket.filter((o) => o.served?.runner === "r1").length}/${bucket.filter((o) => o.served?.runner === "r2").length}/${bucket.filter((o) => o.tag !== "ok").length}`
        }).join(" "),
        cutAt,
        restoredAt
      })
      assert.deepStrictEqual(hung, [])
      assert.deepStrictEqual(found.map(showOverlap), [])
      assert.deepStrictEqual(twice, [])
      assert.deepStrictEqual(Object.keys(byTag(calls.outcomes)).filter((t) => t !== "ok" && t !== "Unavailable"), [])
      assert.isAbove(servedAgain.length, 0, "r1 serves keys again once its connection is back")
      assert.isTrue(r1!.output().length >= 0)
    }).pipe(Effect.scoped), 120_000)

  it.live("PostgreSQL restarted mid-run: calls fail typed while it is down, then every key answers again", () =>
    Effect.gen(function*() {
      // a throwaway server of this test's own: the shared one is never stopped
      const server = yield* embeddedServer
      const h = yield* harnessOn(yield* databaseOn({ url: server.url, server: "embedded" }))
      // the children record nothing: their records would fail with the database, as handler defects
      yield* Effect.all([h.start("r1", { record: false }), h.start("r2", { record: false })], { concurrency: "unbounded" })
      const { stored, volatile } = yield* client(h.db.url)
      yield* warmUp(volatile, keys)
      const calls = yield* load(volatile, { keys, every: 300, ms: 10 })
      const storedCalls = yield* load(stored, { keys: keys.slice(0, 6), every: 1000, ms: 10, prefix: "p" })
      yield* Effect.sleep("3 seconds")
      const downAt = now()
      yield* server.stop
      // longer than the runners' leases (80% of the 9 s lock expiry): they must fence, then take their shards again
      yield* Effect.sleep("12 seconds")
      yield* server.start
      const upAt = now()
      yield* Effect.sleep("20 seconds")
      const hung = yield* calls.stop(20_000)
      const storedHung = yield* storedCalls.stop(40_000)
      const after = calls.outcomes.filter((o) => o.sentAt >= upAt)
      const recovered = new Map<string, number>()
      for (const o of after) if (o.tag === "ok" && !recovered.has(o.key)) recovered.set(o.key, o.doneAt - upAt)
      const lastFailure = Math.max(0, ...after.filter((o) => o.tag !== "ok").map((o) => o.sentAt - upAt))
      yield* measure("PostgreSQL restarted", {
        all: byTag(calls.outcomes),
        stored: byTag(storedCalls.outcomes),
        down: byTag(calls.outcomes.filter((o) => o.sentAt >= downAt && o.sentAt < upAt)),
        everyKeyBackAfter: Math.max(...recovered.values()),
        lastFailureSentAfterUp: lastFailure,
        hung: hung.length + storedHung.length
      })
      assert.deepStrictEqual([...hung, ...storedHung], [])
      // typed failures only: no defect, no interruption
      for (const o of [...calls.outcomes, ...storedCalls.outcomes]) {
        assert.include(["ok", "Unavailable", "TooManyRequests"], o.tag, `${o.id}: ${o.tag} ${String(o.error)}`)
      }
      assert.strictEqual(recovered.size, keys.length, "every key answers again")
      // the calls of the last 5 seconds all succeed
      const late = calls.outcomes.filter((o) => o.sentAt >= upAt + 15_000)
      assert.isAbove(late.length, 0)
      assert.deepStrictEqual(byTag(late), { ok: late.length })
    }).pipe(Effect.scoped), 180_000)
})
