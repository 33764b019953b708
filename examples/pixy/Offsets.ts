/**
 * Consumer-group offsets with Kafka-Pixy's offset tracker: what each group has
 * read of each topic, what it was handed and has not acknowledged yet, and
 * when such a message is offered again (at-least-once delivery).
 *
 * A message is handed out in one of two modes, as in Kafka-Pixy's consume call:
 * - auto-ack (`noAck`): it counts as acknowledged as it is handed out;
 * - explicit ack: it stays offered until acknowledged (`POST .../acks`, or the
 *   next consume's `ackPartition`/`ackOffset`); after `ack_timeout` without one it
 *   is offered again, before any message not yet read.
 *
 * The committed offset is the first one not acknowledged: every offset below it
 * is done. The state outlives the topic consumers, as Kafka's committed offsets do.
 */
import { Clock, Context, Duration, Effect, Layer, Option } from "effect"
import { PixyConfig } from "./Config.js"
import { Log, type LogRecord, partition } from "./Log.js"

export type AckMode = "auto" | "explicit"

/** What a consumer finds: a record to hand out, or nothing yet (and when an offered one comes due). */
export type Claim =
  | { readonly _tag: "Claimed"; readonly record: LogRecord }
  | { readonly _tag: "Empty"; readonly redeliveryAt: number | undefined }

/** Kafka-Pixy's `GET /topics/:topic/offsets` entry for a partition. */
export interface PartitionOffsets {
  readonly partition: number
  readonly begin: number
  readonly end: number
  readonly count: number
  /** the committed offset: everything below it is acknowledged */
  readonly offset: number
  readonly lag: number
  /** handed out and not acknowledged yet */
  readonly offered: number
}

/** One group's position in one topic. Every method is one synchronous step. */
class Cursor {
  /** every offset below is acknowledged */
  committed = 0
  /** the first offset never handed out */
  next = 0
  /** offered offsets -> millis when they are offered again; insertion order is deadline order */
  readonly offered = new Map<number, number>()
  /** acknowledged offsets above `committed` */
  readonly acked = new Set<number>()

  claim(now: number, end: number, mode: AckMode, ackTimeout: number): number | undefined {
    let offset: number | undefined
    const due = this.offered.entries().next()
    if (!due.done && due.value[1] <= now) {
      offset = due.value[0]
      this.offered.delete(offset)
    } else if (this.next < end) {
      offset = this.next++
    } else {
      return undefined
    }
    if (mode === "auto") this.settle(offset)
    else this.offered.set(offset, now + ackTimeout)
    return offset
  }

  /** Acknowledge an offered offset; `false` if it was not offered (done already, or never handed out). */
  ack(offset: number): boolean {
    if (!this.offered.delete(offset)) return false
    this.settle(offset)
    return true
  }

  redeliveryAt(): number | undefined {
    const first = this.offered.values().next()
    return first.done ? undefined : first.value
  }

  private settle(offset: number): void {
    this.acked.add(offset)
    while (this.acked.delete(this.committed)) this.committed++
  }
}

export class Offsets extends Context.Service<Offsets, {
  /** Hand out the next message for the group: a due redelivery first, then the next unread one. */
  readonly claim: (group: string, topic: string, mode: AckMode) => Effect.Effect<Claim>
  /** Acknowledge a message handed out in explicit mode; `false` if it was not waiting for an ack. */
  readonly ack: (group: string, topic: string, offset: number) => Effect.Effect<boolean>
  readonly offsets: (group: string, topic: string) => Effect.Effect<ReadonlyArray<PartitionOffsets>>
}>()("pixy/Offsets") {
  static readonly layer: Layer.Layer<Offsets, never, Log | PixyConfig> = Layer.effect(
    Offsets,
    Effect.gen(function*() {
      const log = yield* Log
      const ackTimeout = Duration.toMillis((yield* PixyConfig).ackTimeout)
      const cursors = new Map<string, Map<string, Cursor>>()
      const cursorOf = (group: string, topic: string): Cursor => {
        let byTopic = cursors.get(group)
        if (byTopic === undefined) cursors.set(group, byTopic = new Map())
        let cursor = byTopic.get(topic)
        if (cursor === undefined) byTopic.set(topic, cursor = new Cursor())
        return cursor
      }

      // Never half done: a long poll interrupted meanwhile (its client went away, its
      // deadline passed) is interrupted before the cursor moves or after the record is read.
      const claim = Effect.fnUntraced(function*(group: string, topic: string, mode: AckMode) {
        const end = yield* log.end(topic)
        const now = yield* Clock.currentTimeMillis
        const cursor = cursorOf(group, topic)
        const offset = cursor.claim(now, end, mode, ackTimeout)
        if (offset === undefined) return { _tag: "Empty", redeliveryAt: cursor.redeliveryAt() } as const
        const record = yield* log.read(topic, offset)
        return Option.match(record, {
          // offsets below `end` are always written
          onNone: () => ({ _tag: "Empty", redeliveryAt: cursor.redeliveryAt() }) as const,
          onSome: (record) => ({ _tag: "Claimed", record }) as const
        })
      }, Effect.uninterruptible)

      return Offsets.of({
        claim,
        ack: (group, topic, offset) => Effect.sync(() => cursorOf(group, topic).ack(offset)),
        offsets: (group, topic) =>
          Effect.map(log.end(topic), (end) => {
            const cursor = cursors.get(group)?.get(topic)
            const committed = cursor?.committed ?? 0
            return [{
              partition,
              begin: 0,
              end,
              count: end,
              offset: committed,
              lag: end - committed,
              offered: cursor?.offered.size ?? 0
            }]
          })
      })
    })
  )
}
