/**
 * The inspector mounted in the running proxy (`/_inspect`), over real HTTP:
 * the JSON state of the consumer tree, the events stream, its end when the
 * client goes and when the proxy shuts down with no fiber left behind (every
 * fiber the proxy starts is counted), and the bearer token.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Queue, Schema, Stream } from "effect"
import { HttpClientRequest } from "effect/http"
import { Inspector } from "effect-dispatcher"
import { eventually, FiberCount, type Proxy, startProxy } from "./support.js"

const decode = Schema.decodeUnknownSync(Schema.fromJsonString(Inspector.State))

interface Event {
  readonly event: string
  readonly data: string
}

/**
 * Follow `/_inspect/events` in a fiber of its own: the events arrive in the
 * queue, which ends when the stream does. Interrupting the fiber is the
 * client hanging up.
 */
const follow = (proxy: Proxy, headers: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const events = yield* Queue.unbounded<Event, unknown>()
    const status = yield* Queue.unbounded<number>()
    const decoder = new TextDecoder()
    let pending = ""
    const fiber = yield* Effect.gen(function*() {
      const response = yield* proxy.client.execute(
        HttpClientRequest.get(`${proxy.url}/_inspect/events`).pipe(HttpClientRequest.setHeaders(headers))
      )
      yield* Queue.offer(status, response.status)
      yield* response.stream.pipe(
        Stream.runForEach((chunk) =>
          Effect.sync(() => {
            pending += decoder.decode(chunk)
            for (let cut = pending.indexOf("\n\n"); cut >= 0; cut = pending.indexOf("\n\n")) {
              const block = pending.slice(0, cut)
              pending = pending.slice(cut + 2)
              const lines = block.split("\n")
              const data = lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n")
              if (data === "") continue
              const event = lines.find((l) => l.startsWith("event: "))?.slice(7) ?? "message"
              Queue.offerUnsafe(events, { event, data })
            }
          })
        )
      )
    }).pipe(
      Effect.scoped,
      Effect.ensuring(Effect.sync(() => Queue.endUnsafe(events))),
      Effect.forkChild
    )
    return { events, status: Queue.take(status), fiber }
  })

describe("pixy: the inspector at /_inspect", () => {
  it.live("the state of the consumer tree as JSON: both levels, a long poll waiting as the oldest request", () =>
    Effect.gen(function*() {
      const proxy = yield* startProxy({ PIXY_LONG_POLLING_TIMEOUT: "5 seconds", PIXY_INSPECT_STUCK_AFTER: "300 millis" })
      yield* proxy.produce("orders", "one")
      assert.strictEqual((yield* proxy.consume("orders", "billing", "noAck")).status, 200)
      // a long poll on an empty topic waits in its topic consumer
      const waiting = yield* Effect.forkChild(proxy.consume("quiet", "billing", "noAck"))
      yield* eventually(
        Effect.map(proxy.request("GET", "/_inspect/state"), (reply) => (reply.body as Inspector.State).stuck.length > 0)
      )
      const reply = yield* proxy.request("GET", "/_inspect/state")
      assert.strictEqual(reply.status, 200)
      assert.match(reply.headers["content-type"]!, /^application\/json/)
      const state = decode(JSON.stringify(reply.body))
      assert.deepStrictEqual(state.dispatchers.map((d) => d.path), ["groups", "groups/billing/topics"])
      assert.deepStrictEqual(state.levels.map((l) => l.names), [["groups"], ["topics"]])
      assert.deepStrictEqual(state.stuck.map((k) => [k.path, k.key]), [["groups/billing/topics", "quiet"]])
      assert.isAbove(state.stuck[0]!.oldest, 300)
      const page = yield* proxy.client.execute(HttpClientRequest.get(`${proxy.url}/_inspect`)).pipe(Effect.scoped)
      assert.strictEqual(page.status, 200)
      yield* Fiber.interrupt(waiting)
    }).pipe(Effect.scoped))

  it.live("events every interval; the stream ends when the client goes, and nothing is left running (fibers counted)", () =>
    Effect.gen(function*() {
      const fibers = new FiberCount()
      const proxy = yield* startProxy({ PIXY_INSPECT_INTERVAL: "100 millis" }, { fibers })
      yield* proxy.produce("orders", "one")
      yield* proxy.consume("orders", "billing", "noAck")
      // quiet: what runs now is the proxy at rest
      yield* Effect.sleep("300 millis")
      const atRest = fibers.active
      const clients = yield* Effect.forEach([1, 2, 3], () => follow(proxy))
      for (const client of clients) {
        assert.strictEqual(yield* client.status, 200)
        const first = yield* Queue.take(client.events)
        const second = yield* Queue.take(client.events)
        assert.deepStrictEqual([first.event, second.event], ["message", "message"])
        assert.strictEqual(decode(second.data).name, "groups")
        assert.isAbove(decode(second.data).at, decode(first.data).at)
      }
      // three responses streaming and one refresher
      assert.isAtLeast(fibers.active, atRest + 4)
      // the clients hang up
      yield* Effect.forEach(clients, (client) => Fiber.interrupt(client.fiber))
      yield* eventually(Effect.sync(() => fibers.active === atRest), 3_000).pipe(
        Effect.tapDefect(() => Effect.logError(`fibers active ${fibers.active}, at rest ${atRest}`))
      )
      // and stays so: no refresher runs with no client
      yield* Effect.sleep("500 millis")
      assert.strictEqual(fibers.active, atRest)
    }).pipe(Effect.scoped))

  it.live("a shutdown ends every stream at once with a last 'end' event; once stopped, no fiber of the proxy is left", () =>
    Effect.gen(function*() {
      const fibers = new FiberCount()
      const proxy = yield* startProxy({ PIXY_INSPECT_INTERVAL: "200 millis", PIXY_LONG_POLLING_TIMEOUT: "10 seconds" }, {
        fibers
      })
      yield* proxy.produce("orders", "one")
      yield* proxy.consume("orders", "billing", "noAck")
      const poll = yield* Effect.forkChild(proxy.consume("orders", "shipping-later", "noAck"))
      void poll
      const clients = yield* Effect.forEach([1, 2], () => follow(proxy))
      for (const client of clients) yield* Queue.take(client.events)
      const started = Date.now()
      yield* proxy.stop
      // the server's close did not wait for the streams (its graceful wait is 20 s), nor for the clients to drop
      // their connections (an event stream's connection closes with it)
      assert.isBelow(Date.now() - started, 1_000)
      for (const client of clients) {
        const exit = yield* Fiber.await(client.fiber)
        assert.strictEqual(exit._tag, "Success")
        const rest = yield* Queue.takeAll(client.events).pipe(Effect.catch(() => Effect.succeed([])))
        assert.strictEqual(rest.at(-1)?.event, "end")
        assert.strictEqual(decode(rest.at(-1)!.data).status, "stopped")
      }
      yield* eventually(Effect.sync(() => fibers.active === 0), 3_000).pipe(
        Effect.tapDefect(() => Effect.logError(`fibers active ${fibers.active} after the stop`))
      )
    }).pipe(Effect.scoped))

  it.live("with PIXY_INSPECT_TOKEN: 403 without the bearer token, the state with it", () =>
    Effect.gen(function*() {
      const proxy = yield* startProxy({ PIXY_INSPECT_TOKEN: "s3cret" })
      for (const path of ["/_inspect", "/_inspect/state", "/_inspect/events"]) {
        const refused = yield* proxy.client.execute(HttpClientRequest.get(`${proxy.url}${path}`)).pipe(Effect.scoped)
        assert.strictEqual(refused.status, 403, path)
      }
      const allowed = yield* proxy.client.execute(
        HttpClientRequest.get(`${proxy.url}/_inspect/state`).pipe(HttpClientRequest.bearerToken("s3cret"))
      ).pipe(Effect.flatMap((r) => Effect.map(r.json, (body) => [r.status, decode(JSON.stringify(body)).name])), Effect.scoped)
      assert.deepStrictEqual(allowed, [200, "groups"])
      const events = yield* follow(proxy, { authorization: "Bearer s3cret" })
      assert.strictEqual(yield* events.status, 200)
      assert.strictEqual((yield* Queue.take(events.events)).event, "message")
      yield* Fiber.interrupt(events.fiber)
    }).pipe(Effect.scoped))

  it.live("PIXY_INSPECT=false: not mounted", () =>
    Effect.gen(function*() {
      const proxy = yield* startProxy({ PIXY_INSPECT: "false" })
      const reply = yield* proxy.client.execute(HttpClientRequest.get(`${proxy.url}/_inspect/state`)).pipe(Effect.scoped)
      assert.strictEqual(reply.status, 404)
    }).pipe(Effect.scoped, Effect.timeout(Duration.seconds(15))))
})
