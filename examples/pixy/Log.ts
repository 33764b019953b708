/**
 * The embedded log: the Kafka side of the proxy, in memory. A topic is made by
 * its first append and holds one partition (0), an append-only array of
 * records numbered from offset 0. Nothing is ever removed.
 *
 * Consumers that find nothing to read wait for the topic's next append: they
 * take the signal (`nextAppend`) before they look, so an append that lands
 * between the look and the wait still wakes them.
 */
import { Context, Deferred, Effect, Layer, Option } from "effect"

/** The one partition of every topic. */
export const partition = 0

export interface LogRecord {
  readonly offset: number
  readonly key: Uint8Array | undefined
  readonly value: Uint8Array
  /** Clock millis when it was appended */
  readonly timestamp: number
}

class Topic {
  readonly records: Array<LogRecord> = []
  /** made by the first waiter, completed and dropped by the next append */
  appended: Deferred.Deferred<void> | undefined = undefined
}

export class Log extends Context.Service<Log, {
  /** Append to a topic (made on first use); answers the record's offset. */
  readonly append: (topic: string, key: Uint8Array | undefined, value: Uint8Array) => Effect.Effect<number>
  /** The record at an offset, if there is one. */
  readonly read: (topic: string, offset: number) => Effect.Effect<Option.Option<LogRecord>>
  /** The offset the next append will get (Kafka's high-water mark); 0 for an unknown topic. */
  readonly end: (topic: string) => Effect.Effect<number>
  /** A signal completed by the next append to the topic. Take it before looking for records. */
  readonly nextAppend: (topic: string) => Effect.Effect<Deferred.Deferred<void>>
  /** The topics that hold records, in the order they were made. */
  readonly topics: Effect.Effect<ReadonlyArray<string>>
}>()("pixy/Log") {
  static readonly layer: Layer.Layer<Log> = Layer.effect(
    Log,
    Effect.sync(() => {
      const topics = new Map<string, Topic>()
      const topicOf = (name: string): Topic => {
        let topic = topics.get(name)
        if (topic === undefined) {
          topic = new Topic()
          topics.set(name, topic)
        }
        return topic
      }

      return Log.of({
        append: (name, key, value) =>
          Effect.clockWith((clock) =>
            Effect.sync(() => {
              const topic = topicOf(name)
              const offset = topic.records.length
              topic.records.push({ offset, key, value, timestamp: clock.currentTimeMillisUnsafe() })
              const appended = topic.appended
              topic.appended = undefined
              if (appended !== undefined) Deferred.doneUnsafe(appended, Effect.void)
              return offset
            })
          ),
        read: (name, offset) => Effect.sync(() => Option.fromUndefinedOr(topics.get(name)?.records[offset])),
        end: (name) => Effect.sync(() => topics.get(name)?.records.length ?? 0),
        nextAppend: (name) =>
          Effect.sync(() => {
            const topic = topicOf(name)
            return (topic.appended ??= Deferred.makeUnsafe<void>())
          }),
        topics: Effect.sync(() => Array.from(topics).flatMap(([name, topic]) => (topic.records.length > 0 ? [name] : [])))
      })
    })
  )
}
