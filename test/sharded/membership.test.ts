/**
 * A stopping runner leaves the membership once it has released its shard
 * locks (`Sharded.layerPostgres`'s runner storage). The engine's stop
 * unregisters first; a runner that saw it gone at once tried to take shards
 * still locked, failed, and tried again only a second later: SIGTERM failover
 * took 1.2 s. The SIGTERM test in `failover.test.ts` measures it on real
 * processes; this pins the rule itself, on the engine's in-memory storage.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import * as RunnerAddress from "effect/cluster/RunnerAddress"
import * as Runner from "effect/cluster/Runner"
import * as RunnerStorage from "effect/cluster/RunnerStorage"
import * as ShardId from "effect/cluster/ShardId"
import { TestClock } from "effect/testing"
import { Lease } from "../../src/internal/sharded/lease.js"
import { leasedRunnerStorage } from "../../src/internal/sharded/postgres.js"

const self = RunnerAddress.make("127.0.0.1", 40001)
const shard = ShardId.make("default", 1)

/** The wrapped storage over the in-memory one, and what the membership says. */
const setup = Effect.gen(function*() {
  const lease = new Lease(9_000)
  const context = yield* Layer.build(leasedRunnerStorage(lease).pipe(Layer.provide(RunnerStorage.layerMemory)))
  const storage = Context.get(context, RunnerStorage.RunnerStorage)
  yield* storage.register(Runner.make({ address: self, groups: ["default"], weight: 1 }), true)
  const members = Effect.map(storage.getRunners, (runners) => runners.length)
  return { storage, members }
})

describe("Sharded membership", () => {
  it.effect("a runner holding shards leaves the membership only once it has released them", () =>
    Effect.gen(function*() {
      const { members, storage } = yield* setup
      assert.deepStrictEqual((yield* storage.acquire(self, [shard])).map(String), [String(shard)])
      yield* storage.unregister(self)
      assert.strictEqual(yield* members, 1, "still a member while it holds its shard")
      yield* storage.releaseAll(self)
      assert.strictEqual(yield* members, 0, "gone once its locks are released")
    }).pipe(Effect.scoped))

  it.effect("a runner whose lease has lapsed (its locks may have expired) leaves at once", () =>
    Effect.gen(function*() {
      const { members, storage } = yield* setup
      yield* storage.acquire(self, [shard])
      yield* TestClock.adjust("8 seconds")
      yield* storage.unregister(self)
      assert.strictEqual(yield* members, 0)
    }).pipe(Effect.scoped))

  it.effect("a runner holding nothing leaves at once", () =>
    Effect.gen(function*() {
      const { members, storage } = yield* setup
      yield* storage.unregister(self)
      assert.strictEqual(yield* members, 0)
    }).pipe(Effect.scoped))
})
