/**
 * The Kafka-Pixy-style proxy end to end: real HTTP on a free port, the
 * dispatcher tree behind it, short timeouts set through `PIXY_*` settings.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { Dispatcher } from "effect-dispatcher"
import { decode, eventually, type Message, startProxy, timed } from "./support.js"

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

describe("pixy proxy", () => {
  it.live("1,000 messages on two topics, 100 long-polling consumers in two groups: each delivered once per group", () =>
    Effect.gen(function*() {
      const proxy = yield* startProxy({ PIXY_LONG_POLLING_TIMEOUT: "500 millis" })
      const topics = ["orders", "payments"]
      const produced = new Map(topics.map((topic) => [topic, new Map<number, string>()]))
      yield* Effect.forEach(range(1_000), (i) => {
        const topic = topics[i % 2]!
        return Effect.map(proxy.produce(topic, `${topic}-${i}`), (offset) => produced.get(topic)!.set(offset, `${topic}-${i}`))
      }, { concurrency: 50, discard: true })

      // 50 consumers per group, 25 per group+topic; each polls until the topic is empty (408)
      const delivered = new Map<string, Array<{ topic: string; message: Message }>>([["blue", []], ["green", []]])
      yield* Effect.forEach(range(100), (c) =>
        Effect.gen(function*() {
          const group = c % 2 === 0 ? "blue" : "green"
          const topic = topics[(c >> 1) % 2]!
          for (;;) {
            const reply = yield* proxy.consume(topic, group, "noAck")
            if (reply.status === 408) return
            assert.strictEqual(reply.status, 200)
            delivered.get(group)!.push({ topic, message: reply.body })
          }
        }), { concurrency: "unbounded", discard: true })

      for (const [group, got] of delivered) {
        assert.strictEqual(got.length, 1_000, `${group} got ${got.length}`)
        const unique = new Set(got.map(({ message, topic }) => `${topic}/${message.offset}`))
        assert.strictEqual(unique.size, 1_000, `${group} got duplicates`)
        for (const { message, topic } of got) {
          assert.strictEqual(decode(message.value), produced.get(topic)!.get(message.offset))
          assert.strictEqual(message.partition, 0)
        }
        for (const topic of topics) {
          const offsets = yield* proxy.request("GET", `/topics/${topic}/offsets?group=${group}`)
          assert.deepStrictEqual(offsets.body, [{ partition: 0, begin: 0, end: 500, count: 500, offset: 500, lag: 0, offered: 0 }])
        }
      }
      const tree = yield* proxy.tree
      assert.strictEqual(tree.stats.rejected.tooManyRequests, 0)
      assert.strictEqual(tree.stats.failures, 0)
      assert.deepStrictEqual(tree.children.map((group) => group.key).sort(), ["blue", "green"])
    }).pipe(Effect.scoped))

  it.live("a consumer on an empty topic gets 408 once the long-polling timeout passes", () =>
    Effect.gen(function*() {
      const proxy = yield* startProxy({ PIXY_LONG_POLLING_TIMEOUT: "400 millis" })
      const [reply, millis] = yield* timed(proxy.consume("quiet", "g", "noAck"))
      assert.strictEqual(reply.status, 408)
      assert.deepStrictEqual(reply.body, { error: "long polling timeout", group: "g", topic: "quiet" })
      assert.isAtLeast(millis, 350)
      assert.isBelow(millis, 3_000)
    }).pipe(Effect.scoped))

  it.live("a long poll is answered as soon as a message is produced", () =>
    Effect.gen(function*() {
      const proxy = yield* startProxy({ PIXY_LONG_POLLING_TIMEOUT: "5 seconds" })
      const poll = yield* Effect.forkChild(timed(proxy.consume("later", "g", "noAck")))
      yield* Effect.sleep("200 millis")
      yield* proxy.produce("later", "hello", "k")
      const [reply, millis] = yield* Fiber.join(poll)
      assert.strictEqual(reply.status, 200)
      assert.deepStrictEqual([decode(reply.body.key), decode(reply.body.value), reply.body.offset], ["k", "hello", 0])
      assert.isBelow(millis, 2_000)
    }).pipe(Effect.scoped))

  it.live("a burst above the mailbox capacity gets 429s with Retry-After; no message is lost or skipped", () =>
    Effect.gen(function*() {
      const proxy = yield* startProxy({ PIXY_CHANNEL_BUFFER_SIZE: "4", PIXY_LONG_POLLING_TIMEOUT: "3 seconds" })
      // 20 polls on an empty topic: one waits in the topic consumer, 4 in its mailbox, the rest are shed
      const burst = yield* Effect.forkChild(
        Effect.forEach(range(20), () => proxy.consume("burst", "g", "noAck"), { concurrency: "unbounded" })
      )
      // every poll has been accepted or shed at the root
      yield* eventually(Effect.map(proxy.tree, (t) => t.stats.accepted + t.stats.rejected.tooManyRequests === 20))
      yield* Effect.forEach(range(20), (i) => proxy.produce("burst", `m${i}`), { discard: true })
      const replies = yield* Fiber.join(burst)

      const shed = replies.filter((r) => r.status === 429)
      const served = replies.filter((r) => r.status === 200)
      assert.strictEqual(shed.length + served.length, 20)
      assert.isAtLeast(shed.length, 1)
      assert.isAtLeast(served.length, 1)
      for (const reply of shed) {
        assert.strictEqual(reply.headers["retry-after"], "1")
        assert.strictEqual(reply.body.capacity, 4)
        assert.deepStrictEqual([reply.body.error, reply.body.group, reply.body.topic], ["too many requests", "g", "burst"])
      }
      // the served ones got the first offsets, in some order; the rest are still there, in order
      const first = served.map((r) => r.body.offset as number).sort((a, b) => a - b)
      assert.deepStrictEqual(first, range(served.length))
      const rest: Array<number> = []
      for (;;) {
        const reply = yield* proxy.consume("burst", "g", "noAck")
        if (reply.status !== 200) break
        rest.push(reply.body.offset)
        if (rest.length + served.length === 20) break
      }
      assert.deepStrictEqual(rest, range(20).slice(served.length))
    }).pipe(Effect.scoped))

  it.live("without acks, messages come back after ack_timeout; acks (explicit and sync) commit them", () =>
    Effect.gen(function*() {
      const proxy = yield* startProxy({ PIXY_ACK_TIMEOUT: "300 millis", PIXY_LONG_POLLING_TIMEOUT: "2 seconds" })
      yield* Effect.forEach(range(3), (i) => proxy.produce("jobs", `job-${i}`), { discard: true })
      const offsetOf = (reply: { status: number; body: any }) => {
        assert.strictEqual(reply.status, 200)
        return reply.body.offset as number
      }
      const offeredAt = Date.now()
      const firstRound = [
        offsetOf(yield* proxy.consume("jobs", "workers")),
        offsetOf(yield* proxy.consume("jobs", "workers")),
        offsetOf(yield* proxy.consume("jobs", "workers"))
      ]
      assert.deepStrictEqual(firstRound, [0, 1, 2])
      assert.strictEqual((yield* proxy.ack("jobs", "workers", 1)).status, 200)
      const offsets = yield* proxy.request("GET", "/topics/jobs/offsets?group=workers")
      assert.deepStrictEqual([offsets.body[0].offset, offsets.body[0].offered, offsets.body[0].lag], [0, 2, 3])

      // 0 and 2 were not acked: offered again once the ack timeout has passed
      const again = yield* proxy.consume("jobs", "workers")
      assert.strictEqual(offsetOf(again), 0)
      assert.strictEqual(decode(again.body.value), "job-0")
      assert.isAtLeast(Date.now() - offeredAt, 290)
      // sync-ack: acknowledge 0 in the next consume, which gets 2
      assert.strictEqual(offsetOf(yield* proxy.consume("jobs", "workers", "ackPartition=0&ackOffset=0")), 2)
      yield* proxy.ack("jobs", "workers", 2)
      const done = yield* proxy.request("GET", "/topics/jobs/offsets?group=workers")
      assert.deepStrictEqual(done.body, [{ partition: 0, begin: 0, end: 3, count: 3, offset: 3, lag: 0, offered: 0 }])
      // another group reads the same messages from the start
      assert.strictEqual(offsetOf(yield* proxy.consume("jobs", "auditors", "noAck")), 0)
    }).pipe(Effect.scoped))

  it.live("an idle group's consumers expire (seen in /_stats) and the next request re-creates them", () =>
    Effect.gen(function*() {
      const proxy = yield* startProxy({ PIXY_SUBSCRIPTION_TIMEOUT: "300 millis", PIXY_LONG_POLLING_TIMEOUT: "1 second" })
      yield* proxy.produce("idle", "one")
      assert.strictEqual((yield* proxy.consume("idle", "sleepy", "noAck")).status, 200)
      const servedAt = Date.now()
      const before = yield* proxy.tree
      assert.deepStrictEqual(before.children.map((group) => [group.key, group.downstream?.children.map((t) => t.key)]), [["sleepy", ["idle"]]])
      assert.deepStrictEqual([before.stats.spawned, before.children[0]!.downstream!.stats.live], [1, 1])
      assert.strictEqual(before.children[0]!.downstream!.path, "groups/sleepy/topics")

      yield* eventually(Effect.map(proxy.tree, (t) => t.children.length === 0))
      assert.isAtLeast(Date.now() - servedAt, 250)
      const idle = yield* proxy.tree
      assert.strictEqual(idle.stats.live, 0)

      yield* proxy.produce("idle", "two")
      const reply = yield* proxy.consume("idle", "sleepy", "noAck")
      assert.deepStrictEqual([reply.status, decode(reply.body.value)], [200, "two"])
      const after = yield* proxy.tree
      // a new group consumer, with a topic dispatcher and a topic consumer of its own
      assert.strictEqual(after.stats.spawned, 2)
      assert.deepStrictEqual(after.children.map((group) => [group.key, group.downstream?.children.map((t) => t.key)]), [["sleepy", ["idle"]]])
      assert.strictEqual(after.children[0]!.downstream!.stats.spawned, 1)
    }).pipe(Effect.scoped))

  it.live("a poll whose client goes away takes no message", () =>
    Effect.gen(function*() {
      const proxy = yield* startProxy({ PIXY_LONG_POLLING_TIMEOUT: "5 seconds" })
      const gone = yield* Effect.forkChild(proxy.consume("drops", "g", "noAck"))
      // the poll is in its topic consumer's hands: accepted, and no longer in the mailbox
      yield* eventually(Effect.map(proxy.tree, (t) => {
        const topics = t.children[0]?.downstream
        return topics?.stats.accepted === 1 && topics.children[0]?.mailboxSize === 0
      }))
      yield* Fiber.interrupt(gone)
      yield* Effect.sleep("100 millis")
      yield* proxy.produce("drops", "kept")
      const reply = yield* proxy.consume("drops", "g", "noAck")
      assert.deepStrictEqual([reply.status, reply.body.offset], [200, 0])
    }).pipe(Effect.scoped))

  it.live("shutdown during long polls answers 503 to each at once, and the server stops", () =>
    Effect.gen(function*() {
      const proxy = yield* startProxy({ PIXY_LONG_POLLING_TIMEOUT: "10 seconds" })
      const polls = yield* Effect.forkChild(
        Effect.forEach(range(10), (i) => proxy.consume(`t${i % 3}`, `g${i % 2}`, "noAck"), { concurrency: "unbounded" })
      )
      yield* eventually(Effect.map(proxy.tree, (t) => t.stats.accepted === 10))
      const [, millis] = yield* timed(proxy.stop)
      const replies = yield* Fiber.join(polls)
      assert.deepStrictEqual(replies.map((r) => r.status), range(10).map(() => 503))
      assert.deepStrictEqual(replies[0]!.body, { error: "service is shutting down", group: "g0", topic: "t0" })
      assert.isBelow(millis, 3_000)
      // the server no longer listens
      const after = yield* Effect.exit(proxy.request("GET", "/topics"))
      assert.strictEqual(after._tag, "Failure")
    }).pipe(Effect.scoped))

  it.live("once the consumers are stopping, a new poll gets 503 while the server still answers", () =>
    Effect.gen(function*() {
      const proxy = yield* startProxy()
      yield* Dispatcher.shutdown(proxy.consumers)
      const reply = yield* proxy.consume("late", "g", "noAck")
      assert.deepStrictEqual([reply.status, reply.body], [503, { error: "service is shutting down", group: "g", topic: "late" }])
      assert.strictEqual((yield* proxy.request("POST", "/topics/late/messages", "x")).status, 200)
    }).pipe(Effect.scoped))

  it.live("bad parameters get 400 naming the parameter", () =>
    Effect.gen(function*() {
      const proxy = yield* startProxy()
      const cases: ReadonlyArray<readonly ["GET" | "POST", string, string]> = [
        ["GET", "/topics/t/messages", "group"],
        ["GET", "/topics/t/messages?group=", "group"],
        ["GET", "/topics/bad%20name/messages?group=g", "topic"],
        ["GET", "/topics/t/messages?group=a&group=b", "group"],
        ["GET", "/topics/t/messages?group=g&ackPartition=0", "ackOffset"],
        ["GET", "/topics/t/messages?group=g&ackPartition=0&ackOffset=-1", "ackOffset"],
        ["GET", "/topics/t/messages?group=g&ackPartition=3&ackOffset=1", "ackPartition"],
        ["GET", "/topics/t/messages?group=g&noAck&ackPartition=0&ackOffset=1", "noAck"],
        ["POST", "/topics/t/acks?group=g&partition=0", "offset"],
        ["POST", "/topics/t/acks?group=g&partition=0&offset=abc", "offset"],
        ["POST", "/topics/t/acks?group=g&partition=1&offset=1", "partition"],
        ["GET", "/topics/t/offsets", "group"],
        ["POST", "/topics/t%2Fx/messages", "topic"]
      ]
      for (const [method, path, names] of cases) {
        const reply = yield* proxy.request(method, path, method === "POST" ? "x" : undefined)
        assert.strictEqual(reply.status, 400, `${method} ${path}`)
        assert.include(reply.body.error, names, `${method} ${path}: ${reply.body.error}`)
      }
      assert.strictEqual((yield* proxy.request("GET", "/nowhere")).status, 404)
      assert.deepStrictEqual((yield* proxy.request("GET", "/topics")).body, [])
    }).pipe(Effect.scoped))
})
