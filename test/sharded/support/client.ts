/**
 * The test process as a client-only member of a test's cluster: handles for
 * the tracked entities, built in the caller's Scope.
 */
import { Context, type Duration, Effect, Layer, Schedule, type Scope } from "effect"
import { Dispatcher, Sharded } from "../../../src/index.js"
import { timings } from "../fixture.js"
import { type Call, type Served, StoredTracked, Tracked } from "../tracked.js"

export class Volatile extends Context.Service<Volatile, Dispatcher.Dispatcher<Call, Served>>()(
  "test/sharded/Volatile"
) {}

export class Stored extends Context.Service<Stored, Dispatcher.Dispatcher<Call, Served>>()("test/sharded/Stored") {}

export interface Client {
  readonly volatile: Dispatcher.Dispatcher<Call, Served>
  readonly stored: Dispatcher.Dispatcher<Call, Served>
}

/** Both handles, on `url`, with these engine timings over the fixture's. */
export const client = (
  url: string,
  options: { readonly timings?: Record<string, unknown>; readonly unavailableAfter?: string } = {}
): Effect.Effect<Client, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const cluster = Sharded.layerPostgres({ url, clientOnly: true, shardingConfig: { ...timings, ...options.timings } })
    const context = yield* Layer.build(
      Layer.mergeAll(
        Sharded.layer(Volatile, Tracked, { unavailableAfter: (options.unavailableAfter ?? "5 seconds") as Duration.Input }),
        Sharded.layer(Stored, StoredTracked)
      ).pipe(Layer.provide(cluster))
    )
    return { volatile: Context.get(context, Volatile), stored: Context.get(context, Stored) }
  })

/** Call each key until it is answered: the runners may still be taking their shards. */
export const warmUp = (handle: Dispatcher.Dispatcher<Call, Served>, keys: ReadonlyArray<string>) =>
  Effect.forEach(
    keys,
    (key, i) =>
      Dispatcher.call(handle, { key, id: `warm-${key}-${i}`, ms: 0 }).pipe(
        Effect.retry({ times: 200, schedule: Schedule.spaced("100 millis") }),
        Effect.timeout("60 seconds")
      ),
    { concurrency: 16 }
  )
