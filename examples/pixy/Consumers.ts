/**
 * The consume path, built as Kafka-Pixy builds it with its dispatcher:
 *
 *   groups dispatcher (root, keyed by group, requestTimeout = long_polling_timeout)
 *     └─ group consumer: a dispatcher of its own (runChild, keyed by topic)
 *          └─ topic consumer: serves the group's long polls on one topic, in order
 *             (serve, idleTimeToLive = subscription_timeout)
 *
 * A long poll with nothing to read waits in its topic consumer for the topic's
 * next append (or an unacknowledged message coming due) until the root's
 * deadline answers it `RequestTimeout`. A group consumer ends once its last
 * topic consumer has expired; its finalizer deregisters the group.
 *
 * Stopping first tells waiting polls to give up (they are answered
 * `Unavailable`), then stops the dispatcher tree, so no poll holds the stop.
 */
import { Clock, Context, Deferred, Duration, Effect, Layer, Metric } from "effect"
import { Dispatcher } from "effect-dispatcher"
import { PixyConfig } from "./Config.js"
import type { LogRecord } from "./Log.js"
import { Log } from "./Log.js"
import { type AckMode, Offsets } from "./Offsets.js"

/** A consume request as the HTTP side makes it. */
export interface ConsumeRequest {
  readonly group: string
  readonly topic: string
  readonly mode: AckMode
  /** sync-ack: acknowledge this offset before reading (Kafka-Pixy's `ackPartition`/`ackOffset`) */
  readonly ackOffset?: number | undefined
}

/** What travels down the tree: the request, and a signal that its caller has gone. */
interface Poll extends ConsumeRequest {
  /** completed if the caller stops waiting: the poll must not take a message for nobody */
  readonly abandoned: Deferred.Deferred<void>
}

export type ConsumeError = Dispatcher.DispatchError

/** What `/_stats` shows: the root dispatcher, every topic dispatcher summed up, and who lives now. */
export interface TreeStats {
  readonly groups: Dispatcher.Stats
  readonly topics: Dispatcher.Stats
  readonly consumers: ReadonlyArray<{
    readonly group: string
    readonly mailboxSize: number
    readonly incarnation: number
    readonly topics: ReadonlyArray<{ readonly topic: string; readonly incarnation: number; readonly served: number }>
  }>
}

interface TopicConsumer {
  readonly topic: string
  readonly incarnation: number
  served: number
}

export class Consumers extends Context.Service<Consumers, {
  /** Long-poll one message for a group through the dispatcher tree. */
  readonly consume: (request: ConsumeRequest) => Effect.Effect<LogRecord, ConsumeError>
  readonly stats: Effect.Effect<TreeStats>
  /** Answer the polls in flight `Unavailable` and stop the tree; idempotent, returns once stopped. */
  readonly stop: Effect.Effect<void>
}>()("pixy/Consumers") {
  static readonly layer: Layer.Layer<Consumers, Dispatcher.InvalidOptions, PixyConfig | Log | Offsets> = Layer.effect(
    Consumers,
    Effect.gen(function*() {
      const config = yield* PixyConfig
      const log = yield* Log
      const offsets = yield* Offsets
      const stopping = yield* Deferred.make<void>()
      /** live topic consumers by group, for `/_stats` */
      const live = new Map<string, Map<string, TopicConsumer>>()
      let incarnations = 0

      // A topic consumer's handler: one long poll, answered with the group's next message.
      const longPoll = Effect.fnUntraced(function*(poll: Poll, consumer: TopicConsumer) {
        if (poll.ackOffset !== undefined) yield* offsets.ack(poll.group, poll.topic, poll.ackOffset)
        for (;;) {
          if ((yield* Deferred.isDone(stopping)) || (yield* Deferred.isDone(poll.abandoned))) {
            return yield* new Dispatcher.Unavailable({ key: poll.topic })
          }
          // take the signal before looking, so an append in between still wakes us
          const appended = yield* log.nextAppend(poll.topic)
          const claim = yield* offsets.claim(poll.group, poll.topic, poll.mode)
          if (claim._tag === "Claimed") {
            consumer.served++
            return claim.record
          }
          const wake = [Deferred.await(appended), Deferred.await(stopping), Deferred.await(poll.abandoned)]
          if (claim.redeliveryAt !== undefined) {
            wake.push(Effect.sleep(Math.max(0, claim.redeliveryAt - (yield* Clock.currentTimeMillis))))
          }
          yield* Effect.raceAllFirst(wake)
        }
      })

      const topicConsumers = (group: string): Dispatcher.Factory<Poll, LogRecord, Dispatcher.Unavailable> => ({
        keyOf: (poll) => poll.topic,
        spawn: (child) =>
          Effect.gen(function*() {
            const consumers = live.get(group)
            const consumer: TopicConsumer = { topic: child.key, incarnation: ++incarnations, served: 0 }
            consumers?.set(child.key, consumer)
            yield* Effect.addFinalizer(() =>
              Effect.sync(() => {
                if (consumers?.get(child.key) === consumer) consumers.delete(child.key)
              }).pipe(Effect.andThen(Effect.logDebug("topic consumer ended")))
            )
            yield* Dispatcher.serve(child, (poll) => longPoll(poll, consumer), {
              idleTimeToLive: config.subscriptionTimeout
            })
          }).pipe(Effect.annotateLogs({ group, topic: child.key }))
      })

      const groupConsumers: Dispatcher.Factory<Poll, LogRecord, Dispatcher.Unavailable> = {
        keyOf: (poll) => poll.group,
        spawn: (child) =>
          Effect.gen(function*() {
            live.set(child.key, new Map())
            yield* Effect.logInfo("group registered")
            // Kafka-Pixy leaves the Kafka consumer group here
            yield* Effect.addFinalizer(() =>
              Effect.sync(() => live.delete(child.key)).pipe(Effect.andThen(Effect.logInfo("group deregistered")))
            )
            yield* Dispatcher.runChild(child, topicConsumers(child.key), {
              name: "topics",
              mailboxCapacity: config.channelBufferSize
            })
          }).pipe(Effect.annotateLogs({ group: child.key }))
      }

      const groups = yield* Dispatcher.make(groupConsumers, {
        name: "groups",
        mailboxCapacity: config.channelBufferSize,
        requestTimeout: config.longPollingTimeout
      })

      const stop = Deferred.succeed(stopping, undefined).pipe(Effect.andThen(Dispatcher.shutdown(groups)))
      // runs before the dispatcher's own stop: waiting polls give up instead of holding it
      yield* Effect.addFinalizer(() => stop)

      const consume = (request: ConsumeRequest): Effect.Effect<LogRecord, ConsumeError> =>
        Effect.uninterruptibleMask((restore) =>
          Effect.gen(function*() {
            const abandoned = yield* Deferred.make<void>()
            const answer = yield* Dispatcher.send(groups, { ...request, abandoned })
            return yield* restore(Deferred.await(answer)).pipe(
              Effect.onInterrupt(() => Deferred.succeed(abandoned, undefined))
            )
          })
        )

      const stats = Effect.gen(function*() {
        const children = yield* Dispatcher.children(groups)
        return {
          groups: yield* Dispatcher.stats(groups),
          topics: yield* statsOf("topics"),
          consumers: children.map((child) => ({
            group: child.key,
            mailboxSize: child.mailboxSize,
            incarnation: child.incarnation,
            topics: Array.from(live.get(child.key)?.values() ?? [], (c) => ({ ...c }))
          }))
        }
      })

      yield* Effect.logInfo("consumers ready").pipe(
        Effect.annotateLogs({
          longPollingTimeout: Duration.format(config.longPollingTimeout),
          subscriptionTimeout: Duration.format(config.subscriptionTimeout),
          ackTimeout: Duration.format(config.ackTimeout),
          channelBufferSize: config.channelBufferSize
        })
      )
      return Consumers.of({ consume, stats, stop })
    })
  )
}

/**
 * A downstream dispatcher has no handle to ask for its stats, so the topic
 * level is read from `Dispatcher.metrics`, where every dispatcher of a name
 * adds up (the stopped ones included).
 */
const statsOf = Effect.fnUntraced(function*(dispatcher: string) {
  const count = (metric: Metric.Counter<number>, outcome?: string) =>
    Effect.map(
      Metric.value(Metric.withAttributes(metric, outcome === undefined ? { dispatcher } : { dispatcher, outcome })),
      (state) => state.count
    )
  const requests = (outcome: string) => count(Dispatcher.metrics.requests, outcome)
  return {
    live: (yield* Metric.value(Metric.withAttributes(Dispatcher.metrics.liveChildren, { dispatcher }))).value,
    spawned: yield* count(Dispatcher.metrics.spawns),
    successors: yield* count(Dispatcher.metrics.successors),
    failures: yield* count(Dispatcher.metrics.failures),
    accepted: yield* requests("accepted"),
    rejected: {
      tooManyRequests: yield* requests("too_many_requests"),
      unavailable: yield* requests("unavailable"),
      requestTimeout: yield* requests("request_timeout"),
      childFailed: yield* requests("child_failed")
    }
  } satisfies Dispatcher.Stats
})
