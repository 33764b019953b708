/**
 * Fencing, in one process on the engine's in-memory test cluster
 * (`TestRunner`): a runner serves a shard only while its lease holds (the
 * lease that `layerPostgres` reads from the engine's lock refreshes; here the
 * test confirms it by hand). When it lapses, the requests in flight are
 * answered `Unavailable` at once, the shard's children are passivated (with a
 * `requestTimeout`, a running handler is interrupted), and new requests are
 * refused until the lease is confirmed again. The same on real processes,
 * with a runner frozen by SIGSTOP, is a test of its own (phase B).
 */
import { assert, layer } from "@effect/vitest"
import { Cause, Clock, Context, Deferred, Duration, Effect, type Exit, Layer, Option, Schema } from "effect"
import * as TestRunner from "effect/cluster/TestRunner"
import { Dispatcher, Sharded } from "../../src/index.js"
import { Lease, ShardLease } from "../../src/internal/sharded/lease.js"

const Work = Schema.Struct({ key: Schema.String, ms: Schema.Number })
type Work = typeof Work.Type

const Fenced = Sharded.entity("Fenced", { request: Work, success: Schema.Number, keyOf: (work) => work.key })

class Handle extends Context.Service<Handle, Dispatcher.Dispatcher<Work, number>>()(
  "test/sharded/fence/Handle"
) {}

class Log extends Context.Service<Log, Array<string>>()("test/sharded/fence/Log") {}

/** Lease expiry: the lease lasts 80% of it. */
const expiration = 1000
const lease = new Lease(expiration)
const shards = Array.from({ length: 300 }, (_, i) => `default:${i + 1}`)
// confirmed in the lease's own time, as the runner storage of `layerPostgres` does
const confirm = Clock.clockWith((clock) => Effect.sync(() => lease.confirm(shards, lease.now(clock))))

const log: Array<string> = []
const factory: Dispatcher.Factory<Work, number> = {
  keyOf: (work) => work.key,
  spawn: (child) => {
    log.push(`start ${child.key}`)
    let served = 0
    return Effect.addFinalizer(() => Effect.sync(() => log.push(`end ${child.key}`))).pipe(
      Effect.andThen(Dispatcher.serve(child, (work) => Effect.as(Effect.sleep(work.ms), served++)))
    )
  }
}

const Cluster = Layer.mergeAll(
  Sharded.runner(Fenced, factory, { requestTimeout: "30 seconds" }),
  Sharded.layer(Handle, Fenced),
  Layer.succeed(Log, log)
).pipe(
  Layer.provide(Layer.succeed(ShardLease, lease)),
  Layer.provideMerge(TestRunner.layer)
)

const errorOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  exit._tag === "Failure" ? Option.getOrUndefined(Cause.findErrorOption(exit.cause)) : undefined

layer(Cluster, { timeout: Duration.seconds(30), excludeTestServices: true })("a runner's lease on its shards", (it) => {
  it.effect("when it lapses, requests in flight are answered Unavailable, the child ends, new requests are refused", () =>
    Effect.gen(function*() {
      const handle = yield* Handle
      yield* confirm
      const first = yield* Dispatcher.call(handle, { key: "a", ms: 0 }).pipe(
        Effect.retry({ times: 50 }),
        Effect.timeout("10 seconds")
      )
      assert.strictEqual(first, 0)
      yield* confirm
      const confirmedAt = Date.now()
      const running = yield* Dispatcher.send(handle, { key: "a", ms: 5000 })
      const queued = yield* Dispatcher.send(handle, { key: "a", ms: 0 })
      const answers = yield* Effect.forEach([running, queued], (d) => Effect.exit(Deferred.await(d)))
      const answeredAfter = Date.now() - confirmedAt
      for (const exit of answers) assert.instanceOf(errorOf(exit), Dispatcher.Unavailable)
      // answered as the lease lapsed (800 ms), not when the 5 s handler would have been done
      assert.isAtLeast(answeredAfter, expiration * 0.8 - 50)
      assert.isBelow(answeredAfter, 2500)
      // the child ended: its running handler was interrupted (its request had a deadline, and was answered)
      yield* Effect.sleep("200 millis")
      assert.deepStrictEqual(log, ["start a", "end a"])
      // refused at once while the lease is not confirmed again
      const started = Date.now()
      assert.instanceOf(errorOf(yield* Effect.exit(Dispatcher.call(handle, { key: "a", ms: 0 }))), Dispatcher.Unavailable)
      assert.isBelow(Date.now() - started, 500)
      // confirmed again: served, by a new child
      yield* confirm
      assert.strictEqual(yield* Dispatcher.call(handle, { key: "a", ms: 0 }), 0)
      assert.deepStrictEqual(log, ["start a", "end a", "start a"])
    }))

  it.effect("hotKeys on the sharded handle answers for the runners of this process", () =>
    Effect.gen(function*() {
      const handle = yield* Handle
      yield* confirm
      yield* Dispatcher.call(handle, { key: "hot", ms: 0 }).pipe(Effect.retry({ times: 50 }), Effect.timeout("10 seconds"))
      yield* confirm
      // one request being handled, two waiting behind it
      yield* Effect.forEach([300, 0, 0], (ms) => Dispatcher.send(handle, { key: "hot", ms }))
      yield* Effect.sleep("50 millis")
      const hot = yield* Dispatcher.hotKeys(handle, { top: 3, by: "depth" })
      assert.strictEqual(hot[0]?.key, "hot")
      assert.isAtLeast(hot[0]!.depth, 2)
      yield* Effect.sleep("400 millis")
      yield* confirm
    }))
})
