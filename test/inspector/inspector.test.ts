/**
 * The inspector's routes, asked without a server on a TestClock: the page,
 * the state (tree, levels, hot and stuck keys, failures), redaction, the
 * authorization hook, the events stream (a frame per interval while a client
 * follows, nothing computed while none does, the end at the dispatcher's
 * stop), and bad options.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Queue, References, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import { HttpRouter } from "effect/http"
import { Dispatcher, Inspector } from "../../src/index.js"
import { jobs, routesOf } from "./support.js"

class JobsTag extends Context.Service<JobsTag, Dispatcher.Dispatcher<{ readonly key: string }, string, string>>()(
  "test/Jobs"
) {}

const decode = Schema.decodeUnknownSync(Schema.fromJsonString(Inspector.State))

const quiet = Effect.provideService(References.MinimumLogLevel, "None")

describe("Inspector: the page and the state", () => {
  it.effect("the page is one self-contained document with a strict policy; the state decodes with Inspector.State", () =>
    Effect.gen(function*() {
      const d = yield* jobs({ name: "jobs" })
      const routes = yield* routesOf(Inspector.layer(d))
      const page = yield* routes.get("/_inspect")
      assert.strictEqual(page.status, 200)
      assert.match(page.headers["content-type"]!, /^text\/html/)
      assert.strictEqual(page.headers["cache-control"], "no-store")
      const csp = page.headers["content-security-policy"]!
      assert.match(csp, /default-src 'none'/)
      assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/=]+'/)
      assert.match(csp, /connect-src 'self'/)
      // offline: nothing it loads comes from elsewhere
      assert.notMatch(page.text, /(src|href)=["']?(https?:)?\/\//)
      assert.match(page.text, /<script type="application\/json" id="config">\{"prefix":"\/_inspect"\}<\/script>/)

      yield* Dispatcher.call(d, { key: "a" })
      const state = yield* routes.get("/_inspect/state")
      assert.strictEqual(state.status, 200)
      assert.match(state.headers["content-type"]!, /^application\/json/)
      const s = decode(state.text)
      assert.deepStrictEqual([s.name, s.status, s.keys, s.levels.length, s.dispatchers.map((x) => x.path)], [
        "jobs",
        "running",
        1,
        1,
        ["jobs"]
      ])
      assert.strictEqual(s.levels[0]!.accepted, 1)
    }).pipe(Effect.scoped))

  it.effect("a tree: every level, the hot and stuck keys with their ages, the recent failures with their causes", () =>
    Effect.gen(function*() {
      interface Rq {
        readonly group: string
        readonly topic: string
        readonly hang?: boolean
      }
      const d = yield* Dispatcher.make<Rq, string>({
        keyOf: (r) => r.group,
        spawn: (child) =>
          Dispatcher.runChild(child, {
            keyOf: (r: Rq) => r.topic,
            spawn: (c) =>
              c.key === "broken"
                ? Effect.fail("no consumer for broken")
                : Dispatcher.serve(c, (r: Rq) => (r.hang ? Effect.never : Effect.succeed(r.topic)))
          }, { name: "topics", requestTimeout: "10 seconds" })
      }, { name: "groups", shutdownTimeout: 0 })
      const routes = yield* routesOf(Inspector.layer(d, { stuckAfter: "2 seconds", top: 3 }))
      yield* Dispatcher.call(d, { group: "g1", topic: "fast" })
      yield* Dispatcher.send(d, { group: "g1", topic: "slow", hang: true })
      yield* Dispatcher.send(d, { group: "g1", topic: "slow" })
      yield* Dispatcher.send(d, { group: "g1", topic: "slow" })
      yield* TestClock.adjust("1 second")
      yield* Dispatcher.send(d, { group: "g2", topic: "broken" })
      yield* TestClock.adjust("1500 millis")
      const s = decode((yield* routes.get("/_inspect/state")).text)
      assert.deepStrictEqual(s.dispatchers.map((x) => [x.path, x.depth, x.keys]), [
        ["groups", 0, 2],
        ["groups/g1/topics", 1, 2],
        ["groups/g2/topics", 1, 1]
      ])
      assert.deepStrictEqual(s.levels.map((l) => [l.depth, l.names, l.dispatchers, l.keys]), [
        [0, ["groups"], 1, 2],
        [1, ["topics"], 2, 3]
      ])
      assert.deepStrictEqual(s.stuck.map((k) => [k.path, k.key, k.oldest, k.depth]), [["groups/g1/topics", "slow", 2_500, 2]])
      assert.deepStrictEqual(s.hot.depth.map((k) => [k.key, k.depth]), [["slow", 2], ["broken", 1]])
      assert.deepStrictEqual(s.hot.failures.map((k) => [k.path, k.key]), [["groups/g2/topics", "broken"]])
      assert.isAtLeast(s.hot.failures[0]!.failures, 1)
      // failures since the inspector was mounted, newest first, with the cause in words
      assert.isAtLeast(s.failures.length, 1)
      const failure = s.failures[0]!
      assert.deepStrictEqual([failure.path, failure.key], ["groups/g2/topics", "broken"])
      assert.include(failure.cause, "no consumer for broken")
      assert.deepStrictEqual([s.top, s.stuckAfter], [3, 2_000])
    }).pipe(Effect.scoped, quiet))

  it.effect("redact: no key leaves the process, in the lists, the paths of the levels or the causes", () =>
    Effect.gen(function*() {
      interface Rq {
        readonly user: string
        readonly device: string
      }
      const d = yield* Dispatcher.make<Rq, string>({
        keyOf: (r) => r.user,
        spawn: (child) =>
          Dispatcher.runChild(child, {
            keyOf: (r: Rq) => r.device,
            spawn: (c) => Effect.fail(`device ${c.key} of ${child.key} is gone`)
          }, { name: "devices" })
      }, { name: "users", shutdownTimeout: 0 })
      const secret = (key: string) => `#${key.length}`
      const routes = yield* routesOf(Inspector.layer(d, { redact: secret, stuckAfter: 0 }))
      yield* Dispatcher.send(d, { user: "ada@example.com", device: "phone-of-ada" })
      yield* TestClock.adjust("5 millis")
      const text = (yield* routes.get("/_inspect/state")).text
      for (const raw of ["ada@example.com", "phone-of-ada"]) assert.notInclude(text, raw)
      const s = decode(text)
      assert.deepStrictEqual(s.dispatchers.map((x) => x.path), ["users", "users/#15/devices"])
      assert.deepStrictEqual(s.hot.depth.map((k) => [k.path, k.key]), [["users/#15/devices", "#12"]])
      assert.include(s.failures[0]!.cause, "device #12 of #15 is gone")
    }).pipe(Effect.scoped, quiet))
})

describe("Inspector: authorize", () => {
  it.effect("a bearer token: 403 without it or with another, 200 with it, on every route", () =>
    Effect.gen(function*() {
      const d = yield* jobs()
      const routes = yield* routesOf(Inspector.layer(d, { authorize: Inspector.authorizeBearer("s3cret") }))
      for (const path of ["/_inspect", "/_inspect/state", "/_inspect/events"]) {
        const none = yield* routes.get(path)
        assert.deepStrictEqual([none.status, none.text], [403, "{\"error\":\"forbidden\"}"], path)
        const wrong = yield* routes.get(path, { authorization: "Bearer s3cre" })
        assert.strictEqual(wrong.status, 403, path)
      }
      for (const path of ["/_inspect", "/_inspect/state"]) {
        const ok = yield* routes.get(path, { authorization: "Bearer s3cret" })
        assert.strictEqual(ok.status, 200, path)
      }
    }).pipe(Effect.scoped))

  it.effect("an effectful predicate; one that throws or dies lets nobody in; an empty token nobody either", () =>
    Effect.gen(function*() {
      const d = yield* jobs()
      const byHeader = yield* routesOf(Inspector.layer(d, {
        prefix: "/a",
        authorize: (request) => Effect.succeed(request.headers["x-team"] === "ops")
      }))
      assert.strictEqual((yield* byHeader.get("/a/state", { "x-team": "ops" })).status, 200)
      assert.strictEqual((yield* byHeader.get("/a/state", { "x-team": "dev" })).status, 403)
      const throwing = yield* routesOf(Inspector.layer(d, {
        prefix: "/b",
        authorize: () => {
          throw new Error("oops")
        }
      }))
      assert.strictEqual((yield* throwing.get("/b/state")).status, 403)
      const dying = yield* routesOf(Inspector.layer(d, { prefix: "/c", authorize: () => Effect.die("oops") }))
      assert.strictEqual((yield* dying.get("/c/state")).status, 403)
      const empty = yield* routesOf(Inspector.layer(d, { prefix: "/d", authorize: Inspector.authorizeBearer("") }))
      assert.strictEqual((yield* empty.get("/d/state", { authorization: "Bearer " })).status, 403)
    }).pipe(Effect.scoped))
})

describe("Inspector: the events", () => {
  it.effect("a frame at once, then one per interval while a client follows; nothing computed once it has gone", () =>
    Effect.gen(function*() {
      const d = yield* jobs({ name: "jobs" })
      let looks = 0
      // redact is asked for every key shown: it counts the looks taken
      const counting = (key: string) => {
        looks++
        return key
      }
      const routes = yield* routesOf(Inspector.layer(d, { interval: "1 second", redact: counting }))
      yield* Dispatcher.send(d, { key: "slow", hang: true })
      yield* TestClock.adjust("10 millis")
      const client = yield* Scope.make()
      const follow = yield* routes.follow("/_inspect/events").pipe(Scope.provide(client))
      assert.strictEqual(follow.response.status, 200)
      assert.match(follow.response.headers["content-type"]!, /^text\/event-stream/)
      const first = yield* Queue.take(follow.events)
      assert.deepStrictEqual([first.event, decode(first.data).hot.oldest.map((k) => k.key)], ["message", ["slow"]])
      yield* TestClock.adjust("1 second")
      const second = decode((yield* Queue.take(follow.events)).data)
      assert.strictEqual(second.hot.oldest[0]!.oldest, 1_010)
      yield* TestClock.adjust("1 second")
      yield* Queue.take(follow.events)
      // the client goes: its stream ends, and no more looks are taken
      yield* Scope.close(client, Exit.void)
      yield* follow.ended
      const before = looks
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(looks, before)
      // a client that goes and one that comes at once: the newcomer gets a frame now and one per interval
      const third = yield* Scope.make()
      const goes = yield* routes.follow("/_inspect/events").pipe(Scope.provide(third))
      yield* Queue.take(goes.events)
      yield* Scope.close(third, Exit.void)
      const comes = yield* routes.follow("/_inspect/events")
      yield* Queue.take(comes.events)
      for (let i = 0; i < 3; i++) {
        yield* TestClock.adjust("1 second")
        yield* Queue.take(comes.events)
      }
    }).pipe(Effect.scoped))

  it.effect("the dispatcher's stop ends every stream with a last event named end; a client after it gets that event only", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const d = yield* jobs({ name: "jobs" }).pipe(Scope.provide(scope))
      const routes = yield* routesOf(Inspector.layer(d))
      const a = yield* routes.follow("/_inspect/events")
      const b = yield* routes.follow("/_inspect/events")
      yield* Queue.take(a.events)
      yield* Queue.take(b.events)
      yield* Dispatcher.shutdown(d)
      for (const client of [a, b]) {
        yield* client.ended
        const rest = yield* Queue.takeAll(client.events).pipe(Effect.catch(() => Effect.succeed([])))
        const last = rest.at(-1)
        assert.deepStrictEqual([last?.event, last === undefined ? undefined : decode(last.data).status], ["end", "stopped"])
      }
      const late = yield* routes.follow("/_inspect/events")
      yield* late.ended
      const got = yield* Queue.takeAll(late.events).pipe(Effect.catch(() => Effect.succeed([])))
      assert.deepStrictEqual(got.map((e) => e.event), ["end"])
      yield* Scope.close(scope, Exit.void)
    }).pipe(Effect.scoped))

  it.effect("the inspector's own end (its layer released) ends every stream", () =>
    Effect.gen(function*() {
      const d = yield* jobs()
      const mounted = yield* Scope.make()
      const routes = yield* routesOf(Inspector.layer(d)).pipe(Scope.provide(mounted))
      const a = yield* routes.follow("/_inspect/events")
      yield* Queue.take(a.events)
      yield* Scope.close(mounted, Exit.void)
      yield* a.ended
    }).pipe(Effect.scoped))

  it.effect("a slow client skips frames: it holds at most one, and the refresher goes on", () =>
    Effect.gen(function*() {
      const d = yield* jobs()
      const routes = yield* routesOf(Inspector.layer(d, { interval: "100 millis" }))
      // a client that reads nothing: its body stream is never pulled
      yield* routes.open("/_inspect/events")
      const a = yield* routes.follow("/_inspect/events")
      yield* Queue.take(a.events)
      for (let i = 0; i < 50; i++) yield* TestClock.adjust("100 millis")
      // the reading client got a frame per interval
      const frames = yield* Queue.takeAll(a.events)
      assert.isAtLeast(frames.length, 45)
    }).pipe(Effect.scoped))
})

describe("Inspector: a handle of another implementation", () => {
  it.effect("read through its tree and its hotKeys: the levels, the lists, the keys redacted in lists and paths", () =>
    Effect.gen(function*() {
      interface Rq {
        readonly group: string
        readonly topic: string
      }
      const inner = yield* Dispatcher.make<Rq, string>({
        keyOf: (r) => r.group,
        spawn: (child) =>
          Dispatcher.runChild(child, { keyOf: (r: Rq) => r.topic, spawn: () => Effect.never }, {
            name: "topics",
            shutdownTimeout: 0
          })
      }, { name: "groups", shutdownTimeout: 0 })
      // a handle that only delegates: the inspector cannot see the in-process dispatcher behind it
      const wrapped = Dispatcher.fromImplementation<Rq, string>({
        name: "wrapped",
        send: (r) => Dispatcher.send(inner, r),
        call: (r) => Dispatcher.call(inner, r),
        shutdown: Dispatcher.shutdown(inner),
        awaitStop: Dispatcher.awaitStop(inner),
        stats: Dispatcher.stats(inner),
        children: Dispatcher.children(inner),
        tree: Dispatcher.tree(inner),
        hotKeys: (options) => Dispatcher.hotKeys(inner, options)
      })
      const routes = yield* routesOf(Inspector.layer(wrapped, { redact: (key) => key.toUpperCase(), stuckAfter: "1 second" }))
      yield* Dispatcher.send(wrapped, { group: "g1", topic: "t1" })
      yield* Dispatcher.send(wrapped, { group: "g1", topic: "t1" })
      yield* Dispatcher.send(wrapped, { group: "g2", topic: "t2" })
      yield* TestClock.adjust("2 seconds")
      // the first look by rate waits half an interval on a handle of another kind
      const asked = yield* Effect.forkChild(routes.get("/_inspect/state"))
      yield* TestClock.adjust("1 second")
      const s = decode((yield* Fiber.join(asked)).text)
      assert.deepStrictEqual(s.dispatchers.map((x) => x.path), ["groups", "groups/G1/topics", "groups/G2/topics"])
      assert.deepStrictEqual(s.levels.map((l) => [l.depth, l.dispatchers, l.keys]), [[0, 1, 2], [1, 2, 2]])
      assert.deepStrictEqual(s.hot.depth.map((k) => [k.path, k.key, k.depth]), [
        ["groups/G1/topics", "T1", 2],
        ["groups/G2/topics", "T2", 1]
      ])
      assert.deepStrictEqual(s.stuck.map((k) => k.key), ["T1", "T2"])
      assert.notInclude(JSON.stringify(s), "g1")
    }).pipe(Effect.scoped))
})

describe("Inspector: options", () => {
  it.effect("bad options fail the layer with InvalidOptions naming them", () =>
    Effect.gen(function*() {
      const d = yield* jobs()
      const failure = (options: unknown) =>
        Effect.flip(
          Layer.build(Inspector.layer(d, options as Inspector.Options).pipe(Layer.provide(HttpRouter.layer)))
        ).pipe(Effect.map((e) => `${e._tag}: ${e.message}`))
      assert.strictEqual(
        yield* failure({ prefix: "inspect" }),
        "InvalidOptions: prefix: expected a path such as \"/_inspect\" (letters, digits, . _ ~ - and /), got \"inspect\""
      )
      assert.strictEqual(
        yield* failure({ interval: "1 millis" }),
        "InvalidOptions: interval: expected a duration of 10 millis or more (e.g. \"1 second\"), got \"1 millis\""
      )
      assert.strictEqual(yield* failure({ top: 1000 }), "InvalidOptions: top: expected a number of keys from 1 to 100, got 1000")
      assert.strictEqual(
        yield* failure({ redact: "***" }),
        "InvalidOptions: redact: expected a function from a key to what is shown of it, got \"***\""
      )
      assert.strictEqual(
        yield* failure({ token: "x" }),
        "InvalidOptions: token: unknown option (known: prefix, interval, top, stuckAfter, redact, authorize)"
      )
    }).pipe(Effect.scoped))

  it.effect("a service tag works as well as a handle; the prefix can be the root", () =>
    Effect.gen(function*() {
      const d = yield* jobs({ name: "tagged" })
      const routes = yield* routesOf(
        Inspector.layer(JobsTag, { prefix: "/" }).pipe(Layer.provide(Layer.succeed(JobsTag, d)))
      )
      assert.strictEqual(decode((yield* routes.get("/state")).text).name, "tagged")
      assert.strictEqual((yield* routes.get("/")).status, 200)
    }).pipe(Effect.scoped))
})
