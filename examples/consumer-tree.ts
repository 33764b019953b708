/**
 * Kafka-Pixy's consumer tree, simulated: one dispatcher per consumer group,
 * one per topic under it, one topic consumer per group+topic serving long
 * polls from an in-memory topic. Along the way: a burst that overflows a
 * mailbox, a consumer that ends mid-stream (its successor takes over) and a
 * graceful stop. It prints what happens and a summary, then exits.
 *
 * Run: npm run demo
 */
import { Cause, Console, Deferred, Effect, Exit, Fiber, Metric, Option, Queue } from "effect"
import { Dispatcher } from "effect-dispatcher"

interface Poll {
  readonly group: string
  readonly topic: string
}

interface Message {
  readonly topic: string
  readonly offset: number
  readonly value: string
}

// The in-memory log: each topic is an array; each group keeps its own offsets.
const topics = new Map<string, Array<string>>()
for (const topic of ["orders", "payments", "shipments"]) {
  topics.set(topic, Array.from({ length: 40 }, (_, i) => `${topic}-${i}`))
}
const offsets = new Map<string, number>()

let consumersEnded = 0
const said: Array<string> = []
const say = (line: string) => Effect.sync(() => said.push(line)).pipe(Effect.andThen(Console.log(line)))

const read = (poll: Poll): Message | undefined => {
  const key = `${poll.group}/${poll.topic}`
  const offset = offsets.get(key) ?? 0
  const value = topics.get(poll.topic)?.[offset]
  if (value === undefined) return undefined
  offsets.set(key, offset + 1)
  return { topic: poll.topic, offset, value }
}

// A topic consumer serves polls for one group+topic from the group's offset and
// expires after 200 ms without a poll. The one for (analytics, payments) is
// written by hand and stops after 5 messages, as if its session had expired:
// polls still in its mailbox go to a successor.
const topicConsumers = (group: string): Dispatcher.Factory<Poll, Message | undefined> => ({
  keyOf: (poll) => poll.topic,
  spawn: (child) =>
    Effect.addFinalizer(() => Effect.sync(() => consumersEnded++)).pipe(
      Effect.andThen(
        group === "analytics" && child.key === "payments"
          ? stopsAfter(5, child)
          : Dispatcher.serve(child, (poll) => Effect.sync(() => read(poll)), { idleTimeToLive: "200 millis" })
      )
    )
})

const stopsAfter = (limit: number, child: Dispatcher.ChildSpec<Poll, Message | undefined>) =>
  Effect.gen(function*() {
    for (let served = 0; served < limit; served++) {
      const next = yield* Queue.take(child.requests).pipe(Effect.timeoutOption("200 millis"))
      if (Option.isNone(next)) return // idle: expire like the others
      yield* next.value.succeed(read(next.value.request))
    }
    yield* say(`  consumer analytics/payments stops after ${limit} polls; a successor takes over its mailbox`)
  }).pipe(Effect.catchTag("Done", () => Effect.void))

// A group consumer is a dispatcher of topic consumers; its finalizer deregisters the group.
const groupConsumers: Dispatcher.Factory<Poll, Message | undefined> = {
  keyOf: (poll) => poll.group,
  spawn: (child) =>
    Effect.addFinalizer(() => say(`  group ${child.key} deregistered`)).pipe(
      Effect.andThen(Dispatcher.runChild(child, topicConsumers(child.key), { name: "topics", mailboxCapacity: 16 }))
    )
}

const program = Effect.gen(function*() {
  const groups = yield* Dispatcher.make(groupConsumers, { name: "groups", mailboxCapacity: 64 })
  const tally = {
    accepted: 0,
    answered: 0,
    messages: 0,
    empty: 0,
    tooManyRequests: 0,
    unavailable: 0,
    requestTimeout: 0,
    childFailed: 0,
    // only a handle whose requests cross processes (Sharded) answers it: 0 in process
    schemaMismatch: 0,
    other: 0
  }

  const record = (exit: Exit.Exit<Message | undefined, Dispatcher.DispatchError>) => {
    tally.answered++
    if (Exit.isSuccess(exit)) {
      if (exit.value === undefined) tally.empty++
      else tally.messages++
      return
    }
    const error = Cause.findErrorOption(exit.cause)
    if (Option.isNone(error)) tally.other++
    else tally[lowerFirst(error.value._tag)]++
  }

  const call = (group: string, topic: string) =>
    Dispatcher.send(groups, { group, topic }).pipe(
      Effect.tap(() => Effect.sync(() => tally.accepted++)),
      Effect.flatMap((answer) => Effect.exit(Deferred.await(answer))),
      Effect.flatMap((exit) => Effect.sync(() => record(exit))),
      Effect.catchTags({
        TooManyRequests: () => Effect.sync(() => tally.tooManyRequests++),
        Unavailable: () => Effect.sync(() => tally.unavailable++)
      })
    )

  yield* say("1. three groups poll three topics, ten rounds each")
  for (let round = 0; round < 10; round++) {
    yield* Effect.forEach(
      ["billing", "analytics", "audit"].flatMap((g) => ["orders", "payments", "shipments"].map((t) => [g, t] as const)),
      ([g, t]) => call(g, t),
      { concurrency: "unbounded", discard: true }
    )
  }
  const afterRounds = yield* Dispatcher.stats(groups)
  yield* say(`  ${tally.messages} messages delivered; ${afterRounds.live} group consumers live`)

  yield* say("2. a burst of 100 polls on analytics/payments: its topic mailbox holds 16")
  yield* Effect.forEach(Array.from({ length: 100 }), () => call("analytics", "payments"), {
    concurrency: "unbounded",
    discard: true
  })
  yield* say(`  ${tally.tooManyRequests} polls shed with TooManyRequests; the rest were served`)

  yield* say("3. the consumers go idle and expire (idleTimeToLive 200 millis)")
  yield* Effect.sleep("400 millis")
  const idle = yield* Dispatcher.children(groups)
  yield* say(`  live group consumers now: ${idle.length}`)

  yield* say("4. a graceful stop while polls arrive")
  const before = tally.messages
  const early = yield* Effect.forkChild(
    Effect.forEach(Array.from({ length: 20 }), (_, i) => call(i % 2 ? "billing" : "audit", "shipments"), {
      concurrency: "unbounded",
      discard: true
    })
  )
  yield* Effect.yieldNow
  const stopping = yield* Effect.forkChild(Dispatcher.shutdown(groups))
  const late = yield* Effect.forkChild(
    Effect.forEach(Array.from({ length: 10 }), () => call("billing", "orders"), { concurrency: "unbounded", discard: true })
  )
  yield* Fiber.join(early)
  yield* Fiber.join(late)
  yield* Fiber.join(stopping)
  yield* say(`  ${tally.messages - before} polls served while stopping; ${tally.unavailable} refused Unavailable once it began`)
  const successors = yield* Metric.value(Metric.withAttributes(Dispatcher.metrics.successors, { dispatcher: "topics" }))
  const lost = tally.accepted - tally.answered
  yield* say(
    `summary: accepted=${tally.accepted} answered=${tally.answered} messages=${tally.messages} empty=${tally.empty} ` +
      `rejected(tooManyRequests=${tally.tooManyRequests} unavailable=${tally.unavailable} requestTimeout=${tally.requestTimeout} childFailed=${tally.childFailed}) ` +
      `topicSuccessors=${successors.count} consumersEnded=${consumersEnded} lost=${lost}`
  )
  if (lost !== 0) return yield* Effect.die(new Error(`${lost} requests were lost`))
}).pipe(Effect.scoped)

const lowerFirst = <S extends string>(s: S) => (s.charAt(0).toLowerCase() + s.slice(1)) as Uncapitalize<S>

Effect.runPromise(program).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
