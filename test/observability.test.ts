/**
 * Stats, children, metrics, logs, spans and configuration.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Exit, Layer, Metric, References, Tracer } from "effect"
import { TestClock } from "effect/testing"
import { Dispatcher } from "../src/index.js"
import { fakeFactory, fakeGroups, rq, type Rq, settle } from "./support/harness.js"
import { captureLogs, withEnv } from "./support/logs.js"

describe("stats and children", () => {
  it.effect("stats after a scripted run equal the hand-counted figures", () =>
    Effect.gen(function*() {
      const { d, endAll, nextChild } = yield* fakeGroups({ mailboxCapacity: 2, requestTimeout: "1 second" })
      // a: 2 accepted, 1 refused (full)
      yield* Dispatcher.send(d, rq("a", "", 1))
      yield* Dispatcher.send(d, rq("a", "", 2))
      yield* Effect.flip(Dispatcher.send(d, rq("a", "", 3)))
      const a = yield* nextChild
      // b: 1 accepted, its child fails with it waiting -> successor after 10 ms
      yield* Dispatcher.send(d, rq("b", "", 1))
      const b = yield* nextChild
      yield* b.end(Exit.fail("boom"))
      yield* TestClock.adjust("10 millis")
      const b2 = yield* nextChild
      yield* b2.takeAndAnswer("ok")
      // a's child answers one; the other times out at 1 s
      yield* a.takeAndAnswer("ok")
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* Dispatcher.stats(d), {
        live: 2,
        spawned: 3,
        successors: 1,
        failures: 1,
        accepted: 3,
        withdrawn: 0,
        rejected: { tooManyRequests: 1, unavailable: 0, requestTimeout: 1, childFailed: 0 }
      })
      assert.deepStrictEqual(yield* Dispatcher.children(d), [
        { key: "a", mailboxSize: 1, incarnation: 1 },
        { key: "b", mailboxSize: 0, incarnation: 2 }
      ])
      yield* endAll
      yield* Dispatcher.shutdown(d)
      yield* Effect.flip(Dispatcher.send(d, rq("c", "", 1)))
      const final = yield* Dispatcher.stats(d)
      assert.deepStrictEqual([final.live, final.rejected.unavailable], [0, 1])
    }).pipe(Effect.scoped))
})

/** groups -> topics, with three calls made: g1/t1, g1/t2, g2/t1 */
const groupsOverTopics = Effect.gen(function*() {
  const d = yield* Dispatcher.make<Rq, string>({
    keyOf: (r) => r.group,
    spawn: (child) =>
      Dispatcher.runChild(child, {
        keyOf: (r: Rq) => r.topic,
        spawn: (c) => Dispatcher.serve(c, (r: Rq) => Effect.succeed(r.topic))
      }, { name: "topics" })
  }, { name: "groups" })
  for (const [g, t] of [["g1", "t1"], ["g1", "t2"], ["g2", "t1"]] as const) yield* Dispatcher.call(d, rq(g, t))
  return d
})

describe("tree", () => {
  it.effect("tree: one snapshot of every level, downstream dispatchers included", () =>
    Effect.gen(function*() {
      const d = yield* groupsOverTopics
      const tree = yield* Dispatcher.tree(d)
      assert.deepStrictEqual([tree.name, tree.path, tree.stats.accepted], ["groups", "groups", 3])
      const shape = tree.children.map((g) => [g.key, g.downstream?.path, g.downstream?.children.map((t) => t.key)])
      assert.deepStrictEqual(shape, [["g1", "groups/g1/topics", ["t1", "t2"]], ["g2", "groups/g2/topics", ["t1"]]])
      assert.strictEqual(tree.children[0]!.downstream!.stats.spawned, 2)
    }).pipe(Effect.scoped))
})

/** Children keyed by group that answer each request with its topic. */
const topicEcho: Dispatcher.Factory<Rq, string, string> = {
  keyOf: (r) => r.group,
  spawn: (child) => Dispatcher.serve(child, (r) => Effect.succeed(r.topic))
}

/** A metric's value for one set of attributes. */
const value = <S>(metric: Metric.Metric<any, S>, attributes: Record<string, string>) =>
  Metric.value(Metric.withAttributes(metric, attributes))

describe("metrics", () => {
  it.effect("a metric read back through Metric.value: requests by outcome, spawns, live children", () =>
    Effect.gen(function*() {
      const d = yield* Dispatcher.make(topicEcho, { name: "metered", mailboxCapacity: 1 })
      for (const key of ["a", "b", "a"]) yield* Dispatcher.call(d, rq(key, "x"))
      const accepted = yield* value(Dispatcher.metrics.requests, { dispatcher: "metered", outcome: "accepted" })
      assert.strictEqual(accepted.count, 3)
      const spawns = yield* value(Dispatcher.metrics.spawns, { dispatcher: "metered" })
      assert.strictEqual(spawns.count, 2)
      const live = yield* value(Dispatcher.metrics.liveChildren, { dispatcher: "metered" })
      assert.strictEqual(live.value, 2)
      yield* Dispatcher.shutdown(d)
      // a stopped dispatcher's counts stay in its name's totals
      const after = yield* value(Dispatcher.metrics.requests, { dispatcher: "metered", outcome: "accepted" })
      assert.strictEqual(after.count, 3)
      assert.strictEqual((yield* value(Dispatcher.metrics.liveChildren, { dispatcher: "metered" })).value, 0)
    }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map())))

  it.effect("every downstream dispatcher of a name adds to the same series", () =>
    Effect.gen(function*() {
      yield* groupsOverTopics
      const topics = yield* value(Dispatcher.metrics.spawns, { dispatcher: "topics" })
      assert.strictEqual(topics.count, 3)
      const groups = yield* value(Dispatcher.metrics.spawns, { dispatcher: "groups" })
      assert.strictEqual(groups.count, 2)
    }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map())))
})

describe("logs", () => {
  it.effect("logs are annotated with the dispatcher path (groups/g1/topics) and the key", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const d = yield* Dispatcher.make<Rq, string>({
        keyOf: (r) => r.group,
        spawn: (child) =>
          Dispatcher.runChild(child, {
            keyOf: (r: Rq) => r.topic,
            spawn: (c) => Dispatcher.serve(c, (r: Rq) => Effect.succeed(r.topic), { idleTimeToLive: "1 second" })
          }, { name: "topics" })
      }, { name: "groups" })
      yield* Dispatcher.call(d, rq("g1", "t1"))
      yield* TestClock.adjust("1 second")
      yield* settle
      const ended = logs.entries.filter((e) => e.level === "Debug" && String(e.message).includes("child ended"))
      const paths = ended.map((e) => `${e.annotations.dispatcher}|${e.annotations.key}`)
      assert.includeMembers(paths, ["groups/g1/topics|t1", "groups|g1"])
    }).pipe(
      Effect.scoped,
      Effect.provide(logs.layer),
      Effect.provideService(References.MinimumLogLevel, "Debug")
    )
  })

  it.effect("without Debug enabled a spawn and a disposal log nothing", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const d = yield* Dispatcher.make<Rq, string>({
        keyOf: (r) => r.group,
        spawn: (child) => Dispatcher.serve(child, (r) => Effect.succeed(r.topic), { idleTimeToLive: "1 second" })
      })
      yield* Dispatcher.call(d, rq("g1", "t1"))
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(logs.entries, [])
    }).pipe(Effect.scoped, Effect.provide(logs.layer))
  })
})

describe("spans", () => {
  it.effect("send and call are traced with a span carrying the key", () =>
    Effect.gen(function*() {
      const spans: Array<{ name: string; attributes: ReadonlyMap<string, unknown> }> = []
      const tracer = Tracer.make({
        span(options) {
          const span = Tracer.nativeTracer.span(options)
          spans.push({ name: span.name, attributes: span.attributes })
          return span
        }
      })
      const program = Effect.gen(function*() {
        const d = yield* Dispatcher.make(topicEcho, { name: "traced" })
        yield* Dispatcher.call(d, rq("k1", "x"))
        yield* Dispatcher.send(d, rq("k2", "x"))
      }).pipe(Effect.scoped, Effect.provideService(Tracer.Tracer, tracer))
      yield* program
      const ours = spans.filter((s) => s.name.startsWith("Dispatcher."))
      assert.deepStrictEqual(ours.map((s) => [s.name, s.attributes.get("dispatcher.key"), s.attributes.get("dispatcher.name")]), [
        ["Dispatcher.call", "k1", "traced"],
        ["Dispatcher.send", "k2", "traced"]
      ])
    }))
})

describe("layerConfig", () => {
  class Groups extends Context.Service<Groups, Dispatcher.Dispatcher<Rq, string, string>>()("test/Groups") {}

  it.effect("options from environment variables (DISPATCHER_MAILBOX_CAPACITY style)", () =>
    Effect.gen(function*() {
      const d = yield* Effect.service(Groups)
      yield* Dispatcher.call(d, rq("a", "1"))
      yield* Dispatcher.call(d, rq("a", "2"))
      // the name came from DISPATCHER_NAME: the metrics carry it
      const spawns = yield* value(Dispatcher.metrics.spawns, { dispatcher: "from-env" })
      assert.strictEqual(spawns.count, 1)
    }).pipe(
      Effect.provide(
        Dispatcher.layerConfig(Groups, topicEcho, Dispatcher.config()).pipe(
          Layer.provide(withEnv({ DISPATCHER_MAILBOX_CAPACITY: "2", DISPATCHER_NAME: "from-env" }))
        )
      ),
      Effect.provideService(Metric.MetricRegistry, new Map())
    ))

  it.effect("a capacity from configuration is enforced", () =>
    Effect.gen(function*() {
      const { endAll, factory: fake } = yield* fakeFactory((r: Rq) => r.group)
      const d = yield* Dispatcher.make(fake, yield* Dispatcher.config("GROUPS"))
      yield* Dispatcher.send(d, rq("a", "1"))
      const error = yield* Effect.flip(Dispatcher.send(d, rq("a", "2")))
      assert.deepStrictEqual([error._tag, (error as Dispatcher.TooManyRequests).capacity], ["TooManyRequests", 1])
      yield* endAll
    }).pipe(
      Effect.scoped,
      Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ GROUPS: { MAILBOX_CAPACITY: 1 } })))
    ))

  it.effect("a bad value is a ConfigError naming the variable", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(
        Layer.build(
          Dispatcher.layerConfig(Groups, topicEcho, Dispatcher.config()).pipe(
            Layer.provide(withEnv({ DISPATCHER_MAILBOX_CAPACITY: "many" }))
          )
        )
      )
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
      assert.strictEqual(error?._tag, "Fail")
      const message = String((error as { error: unknown }).error)
      assert.match(message, /ConfigError/)
      assert.match(message, /\["DISPATCHER"\]\["MAILBOX_CAPACITY"\]/)
      const timeout = yield* Effect.exit(
        Layer.build(
          Dispatcher.layerConfig(Groups, topicEcho, Dispatcher.config()).pipe(
            Layer.provide(withEnv({ DISPATCHER_REQUEST_TIMEOUT: "0 millis" }))
          )
        )
      )
      assert.match(String(timeout), /REQUEST_TIMEOUT/)
    }).pipe(Effect.scoped))

  it.effect("errors carry their keys", () =>
    Effect.gen(function*() {
      const d = yield* Dispatcher.make(topicEcho, { requestTimeout: "1 second" })
      yield* Dispatcher.shutdown(d)
      const error = yield* Effect.flip(Dispatcher.send(d, rq("z", "")))
      assert.deepStrictEqual([error._tag, error.key], ["Unavailable", "z"])
    }).pipe(Effect.scoped))
})
