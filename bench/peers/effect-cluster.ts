/**
 * effect-cluster: Effect 4's own keyed entities. One entity type with one
 * echo RPC, run in-process the way `TestRunner.layer` assembles a cluster
 * (Sharding, no-op runners and health, in-memory message and runner storage),
 * with the same mailbox capacity. Configured for its best in-process showing:
 * `simulateRemoteSerialization: false` (nothing leaves the process), and no cap
 * on resident entities (the default, 10,000, would evict at K = 100,000).
 */
import { Effect, Layer, Schema } from "effect"
import { Entity, MessageStorage, RunnerHealth, Runners, RunnerStorage, Sharding, ShardingConfig } from "effect/cluster"
import { Rpc } from "effect/rpc"
import type { EffectPeer } from "../types.js"
import { effectHandler } from "./handlers.js"
import { rejectedOn } from "./rejected.js"

const Echo = Rpc.make("Echo", {
  payload: { n: Schema.Number },
  success: Schema.Number
})

const EchoEntity = Entity.make("Echo", [Echo])

const orRejected = rejectedOn("MailboxFull")

/** `TestRunner.layer`, with the sharding configuration given. */
const cluster = (config: Partial<ShardingConfig.ShardingConfig["Service"]>) =>
  Sharding.layer.pipe(
    Layer.provideMerge(Runners.layerNoop),
    Layer.provideMerge(MessageStorage.layerMemory),
    Layer.provide([RunnerStorage.layerMemory, RunnerHealth.layerNoop]),
    Layer.provide(ShardingConfig.layer(config))
  )

export const peer: EffectPeer = {
  kind: "effect",
  stopKind: "the cluster layer's Scope is closed, and Sharding terminates every entity",
  idleChildren: 10_000,
  notes: {
    w2: "an entity cannot end itself after one request: it is passivated after `maxIdleTime` (1 ms here) by a reaper that looks at most every 5 s, so W2 times the spawn per call and leaves most disposals outside the clock"
  },
  unsupported: {
    w3: "an entity calling another entity's client is not a dispatcher tree (a group entity handles one request at a time unless forked); not measured"
  },
  make: ({ capacity, child, handler }) =>
    Effect.gen(function*() {
      const answer = effectHandler(handler)
      const entities = EchoEntity.toLayer(
        {
          Echo: child === "stuck" ? () => Effect.never : ({ payload }) => answer(payload.n)
        },
        // "once": an entity cannot end itself after a request; the shortest passivation is used
        { mailboxCapacity: capacity, ...(child === "once" ? { maxIdleTime: "1 millis" } : {}) }
      )
      const context = yield* Layer.build(
        entities.pipe(
          Layer.provideMerge(cluster({ simulateRemoteSerialization: false, maxResidentEntities: "unbounded" }))
        )
      )
      const clientFor = yield* Effect.provideContext(EchoEntity.client, context)
      const call = (key: string, n: number) => clientFor(key).Echo({ n })
      return {
        call,
        tryCall: (key: string, n: number) => orRejected(call(key, n))
      }
    }).pipe(Effect.orDie)
}
