/**
 * The consume path, built as Kafka-Pixy builds it with its dispatcher:
 *
 *   groups dispatcher (root, keyed by group, requestTimeout = long_polling_timeout)
 *     └─ group consumer: a dispatcher of its own (runChild, keyed by topic)
 *          └─ topic consumer: serves the group's long polls on one topic, in order
 *             (serve, idleTimeToLive = subscription_timeout, onStop = "interrupt")
 *
 * The service is the root dispatcher itself: `Dispatcher.call` consumes,
 * `Dispatcher.tree` shows the tree, `Dispatcher.shutdown` stops it.
 *
 * A long poll with nothing to read waits in its topic consumer for the topic's
 * next append (or an unacknowledged message coming due). It ends when a message
 * is claimed, or is interrupted as soon as its request is answered otherwise:
 * the root's deadline (`RequestTimeout`), its caller going away (the call is
 * withdrawn), or a stop (the topic consumer is interrupted at once and what it
 * holds is answered `Unavailable`, so no poll holds the stop). A group consumer
 * ends once its last topic consumer has expired; its finalizer deregisters the
 * group.
 */
import { Clock, Context, Deferred, Duration, Effect, Layer } from "effect"
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

export type ConsumeError = Dispatcher.DispatchError

export class Consumers extends Context.Service<Consumers, Dispatcher.Dispatcher<ConsumeRequest, LogRecord>>()(
  "pixy/Consumers"
) {
  static readonly layer: Layer.Layer<Consumers, Dispatcher.InvalidOptions, PixyConfig | Log | Offsets> = Layer.effect(
    Consumers,
    Effect.gen(function*() {
      const config = yield* PixyConfig
      const log = yield* Log
      const offsets = yield* Offsets

      // A topic consumer's handler: one long poll, answered with the group's next message.
      // It is interrupted only while it waits: the claim is one uninterruptible step.
      const longPoll = Effect.fnUntraced(function*(poll: ConsumeRequest) {
        if (poll.ackOffset !== undefined) yield* offsets.ack(poll.group, poll.topic, poll.ackOffset)
        for (;;) {
          // take the signal before looking, so an append in between still wakes us
          const appended = yield* log.nextAppend(poll.topic)
          const claim = yield* offsets.claim(poll.group, poll.topic, poll.mode)
          if (claim._tag === "Claimed") return claim.record
          if (claim.redeliveryAt === undefined) {
            yield* Deferred.await(appended)
          } else {
            const due = Math.max(0, claim.redeliveryAt - (yield* Clock.currentTimeMillis))
            yield* Effect.timeoutOption(Deferred.await(appended), due)
          }
        }
      })

      const topicConsumers: Dispatcher.Factory<ConsumeRequest, LogRecord> = {
        keyOf: (poll) => poll.topic,
        spawn: (child) =>
          Effect.addFinalizer(() => Effect.logDebug("topic consumer ended")).pipe(
            Effect.andThen(Dispatcher.serve(child, longPoll, {
              idleTimeToLive: config.subscriptionTimeout,
              // a stop answers the poll in flight 503 at once instead of waiting for a message
              onStop: "interrupt"
            })),
            Effect.annotateLogs({ topic: child.key })
          )
      }

      const groupConsumers: Dispatcher.Factory<ConsumeRequest, LogRecord> = {
        keyOf: (poll) => poll.group,
        spawn: (child) =>
          Effect.gen(function*() {
            yield* Effect.logInfo("group registered")
            // Kafka-Pixy leaves the Kafka consumer group here
            yield* Effect.addFinalizer(() => Effect.logInfo("group deregistered"))
            yield* Dispatcher.runChild(child, topicConsumers, {
              name: "topics",
              mailboxCapacity: config.channelBufferSize
            })
          }).pipe(Effect.annotateLogs({ group: child.key }))
      }

      // made in the Layer's Scope: closing it stops the tree, leaves first
      const groups = yield* Dispatcher.make(groupConsumers, {
        name: "groups",
        mailboxCapacity: config.channelBufferSize,
        requestTimeout: config.longPollingTimeout
      })

      yield* Effect.logInfo("consumers ready").pipe(
        Effect.annotateLogs({
          longPollingTimeout: Duration.format(config.longPollingTimeout),
          subscriptionTimeout: Duration.format(config.subscriptionTimeout),
          ackTimeout: Duration.format(config.ackTimeout),
          channelBufferSize: config.channelBufferSize
        })
      )
      return groups
    })
  )
}
