/**
 * Kafka-Pixy's REST API over the embedded log and the consumer tree:
 *
 *   POST /topics/:topic/messages?key=K          produce the body; 200 {partition, offset}
 *   GET  /topics/:topic/messages?group=G        long-poll consume; 200 {key, value, partition, offset}
 *        [&noAck | &ackPartition=P&ackOffset=O]  (key and value base64, as in Kafka-Pixy)
 *   POST /topics/:topic/acks?group=G&partition=P&offset=O   acknowledge; 200 {}
 *   GET  /topics/:topic/offsets?group=G         [{partition, begin, end, count, offset, lag, offered}]
 *   GET  /topics                                the topics
 *   GET  /_stats                                the dispatcher tree (`Dispatcher.tree`)
 *   GET  /_inspect[/state|/events]              the inspector (mounted in Proxy.ts: `Inspector.layer`)
 *
 * Errors are JSON `{ error, ... }` with Kafka-Pixy's status codes: 400 bad
 * parameter; for a poll, `{ error, group, topic }` with 408 long-polling
 * timeout, 429 mailbox full (with `Retry-After` and the `capacity`), 503
 * shutting down, 500 consumer failed.
 */
import { Effect, Layer, Schema } from "effect"
import { Base64 } from "effect/encoding"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { Dispatcher } from "effect-dispatcher"
import { Consumers, type ConsumeError } from "./Consumers.js"
import { Log, type LogRecord, partition } from "./Log.js"
import { Offsets } from "./Offsets.js"

// -----------------------------------------------------------------------------
// Parameters
// -----------------------------------------------------------------------------

/** Kafka's rule for topic and group names. */
const Name = Schema.String.check(
  Schema.isPattern(/^[A-Za-z0-9._-]{1,249}$/, { expected: "1 to 249 letters, digits, '.', '_' or '-'" })
)

const Offset = Schema.NumberFromString.check(
  Schema.isInt({ expected: "a whole number" }),
  Schema.isGreaterThanOrEqualTo(0)
)

/** Every topic has the one partition. */
const Partition = Offset.check(
  Schema.makeFilter((p: number) => p === partition, { expected: `partition ${partition} (topics have one partition)` })
)

const ProduceParams = Schema.Struct({
  topic: Name,
  key: Schema.optional(Schema.String)
})

const ConsumeParams = Schema.Struct({
  topic: Name,
  group: Name,
  /** present (any value): auto-ack */
  noAck: Schema.optional(Schema.String),
  ackPartition: Schema.optional(Partition),
  ackOffset: Schema.optional(Offset)
})

const AckParams = Schema.Struct({
  topic: Name,
  group: Name,
  partition: Partition,
  offset: Offset
})

const GroupParams = Schema.Struct({
  topic: Name,
  group: Name
})

// -----------------------------------------------------------------------------
// Responses
// -----------------------------------------------------------------------------

const json = (body: unknown, status = 200, headers?: Record<string, string>) =>
  HttpServerResponse.jsonUnsafe(body, headers === undefined ? { status } : { status, headers })

const badRequest = (message: string) => json({ error: message.replace(/\s*\n\s*/g, " ") }, 400)

/** For people and `curl`: indented. */
const prettyJson = (body: unknown) =>
  HttpServerResponse.text(`${JSON.stringify(body, null, 2)}\n`, { contentType: "application/json" })

/** Kafka-Pixy's consume response: key and value base64, the key `null` when there is none. */
const messageBody = (record: LogRecord) => ({
  key: record.key === undefined ? null : Base64.encode(record.key),
  value: Base64.encode(record.value),
  partition,
  offset: record.offset
})

/**
 * A failed poll, in one vocabulary: every body names the poll's `group` and `topic` (not the
 * dispatcher's `key`, which is the group at the root and the topic one level down).
 */
const consumeFailed = (poll: { readonly group: string; readonly topic: string }) => (error: ConsumeError) => {
  const about = { group: poll.group, topic: poll.topic }
  switch (error._tag) {
    case "RequestTimeout":
      return json({ error: "long polling timeout", ...about }, 408)
    case "TooManyRequests":
      return json({ error: "too many requests", ...about, capacity: error.capacity }, 429, { "retry-after": "1" })
    case "Unavailable":
      return json({ error: "service is shutting down", ...about }, 503)
    case "ChildFailed":
      return json({ error: "consumer failed", ...about }, 500)
    case "SchemaMismatch":
      // only a handle whose requests cross processes (Sharded) answers it: never in process
      return json({ error: "request not understood", ...about, reason: error.message }, 502)
  }
}

/** Schema and body-reading failures are the client's: 400. */
const orBadRequest = <R>(
  effect: Effect.Effect<HttpServerResponse.HttpServerResponse, Schema.SchemaError | { readonly message: string }, R>
) => Effect.catch(effect, (error) => Effect.succeed(badRequest(error.message)))

// -----------------------------------------------------------------------------
// Routes
// -----------------------------------------------------------------------------

export const Routes: Layer.Layer<never, never, HttpRouter.HttpRouter | Consumers | Log | Offsets> = HttpRouter.addAll(
  Effect.gen(function*() {
    const consumers = yield* Consumers
    const log = yield* Log
    const offsets = yield* Offsets

    const produce = Effect.gen(function*() {
      const params = yield* HttpRouter.schemaParams(ProduceParams)
      const request = yield* HttpServerRequest.HttpServerRequest
      const body = new Uint8Array(yield* request.arrayBuffer)
      const key = params.key === undefined ? undefined : new TextEncoder().encode(params.key)
      const offset = yield* log.append(params.topic, key, body)
      return json({ partition, offset })
    }).pipe(orBadRequest)

    const consume = Effect.gen(function*() {
      const params = yield* HttpRouter.schemaParams(ConsumeParams)
      if ((params.ackPartition === undefined) !== (params.ackOffset === undefined)) {
        return badRequest("ackPartition and ackOffset go together")
      }
      if (params.noAck !== undefined && params.ackOffset !== undefined) {
        return badRequest("noAck cannot be combined with ackPartition and ackOffset")
      }
      return yield* Dispatcher.call(consumers, {
        group: params.group,
        topic: params.topic,
        mode: params.noAck === undefined ? "explicit" : "auto",
        ackOffset: params.ackOffset
      }).pipe(
        Effect.match({ onFailure: consumeFailed(params), onSuccess: (record) => json(messageBody(record)) })
      )
    }).pipe(orBadRequest)

    const ack = Effect.gen(function*() {
      const params = yield* HttpRouter.schemaParams(AckParams)
      yield* offsets.ack(params.group, params.topic, params.offset)
      return json({})
    }).pipe(orBadRequest)

    const groupOffsets = Effect.gen(function*() {
      const params = yield* HttpRouter.schemaParams(GroupParams)
      return json(yield* offsets.offsets(params.group, params.topic))
    }).pipe(orBadRequest)

    return [
      HttpRouter.route("POST", "/topics/:topic/messages", produce),
      HttpRouter.route("GET", "/topics/:topic/messages", consume),
      HttpRouter.route("POST", "/topics/:topic/acks", ack),
      HttpRouter.route("GET", "/topics/:topic/offsets", groupOffsets),
      HttpRouter.route("GET", "/topics", Effect.map(log.topics, (topics) => json(topics))),
      HttpRouter.route("GET", "/_stats", Effect.map(Dispatcher.tree(consumers), prettyJson))
    ] as const
  })
)
