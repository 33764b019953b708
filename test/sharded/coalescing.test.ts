/**
 * The engine's sockets, their writes coalesced (`coalescing.ts`): on real
 * loopback sockets, the writes of one run go out together, `mostMessages` at
 * a time at most, in order, and none is held past the run; a write past the
 * socket's buffer still reports backpressure and drains. The runners' server
 * hands each connection's Node socket to the handler (what coalescing there
 * rests on): if `@effect/platform-node` stops doing so, a test here fails.
 */
import { assert, describe, it } from "@effect/vitest"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import { Effect, Exit, Layer, Option, Scope } from "effect"
import * as ShardingConfig from "effect/cluster/ShardingConfig"
import * as RunnerAddress from "effect/cluster/RunnerAddress"
import * as SocketServer from "effect/socket/SocketServer"
import * as Net from "node:net"
import { coalesceWrites, layerSocketServer, mostMessages } from "../../src/internal/sharded/coalescing.js"

/** A loopback server that keeps what it receives, and a connected client socket. */
const pair = Effect.acquireRelease(
  Effect.callback<{ client: Net.Socket; received: () => string; server: Net.Server }>((resume) => {
    const chunks: Array<Buffer> = []
    const server = Net.createServer((conn) => conn.on("data", (chunk: Buffer) => chunks.push(chunk)))
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as Net.AddressInfo
      const client = Net.createConnection({ host: "127.0.0.1", port }, () =>
        resume(Effect.succeed({ client, server, received: () => Buffer.concat(chunks).toString() })))
    })
  }),
  ({ client, server }) =>
    Effect.sync(() => {
      client.destroy()
      server.close()
    })
)

/** The batches the socket hands the kernel, by their number of writes. */
const spyBatches = (socket: Net.Socket): Array<number> => {
  const batches: Array<number> = []
  const one = socket._write.bind(socket)
  const many = socket._writev!.bind(socket)
  socket._write = (chunk, encoding, callback) => {
    batches.push(1)
    one(chunk, encoding, callback)
  }
  socket._writev = (chunks, callback) => {
    batches.push(chunks.length)
    many(chunks, callback)
  }
  return batches
}

const tick = Effect.promise(() => new Promise<void>((resolve) => process.nextTick(resolve)))

/** Wait for the peer to have seen something (the test's timeout is the bound). */
const until = (done: () => boolean): Effect.Effect<void> =>
  Effect.suspend(() => (done() ? Effect.void : Effect.andThen(Effect.sleep(5), until(done))))

describe("the engine's sockets, their writes coalesced", () => {
  it.live("sends the writes of one run together, 16 at a time at most, in order", () =>
    Effect.scoped(Effect.gen(function*() {
      const { client, received } = yield* pair
      coalesceWrites(client)
      const batches = spyBatches(client)
      const messages = Array.from({ length: 2 * mostMessages + 8 }, (_, i) => `m${i};`)
      for (const message of messages) client.write(message)
      // the first two batches went as soon as they were full; the rest waits for the run's end
      assert.deepStrictEqual(batches, [mostMessages, mostMessages])
      yield* tick
      assert.deepStrictEqual(batches, [mostMessages, mostMessages, 8])
      yield* until(() => received().length === messages.join("").length)
      assert.strictEqual(received(), messages.join(""))
    })))

  it.live("holds no write past the run that made it", () =>
    Effect.scoped(Effect.gen(function*() {
      const { client, received } = yield* pair
      coalesceWrites(client)
      const batches = spyBatches(client)
      client.write("alone;")
      assert.deepStrictEqual(batches, [])
      assert.isAbove(client.writableLength, 0)
      yield* tick
      assert.deepStrictEqual(batches, [1])
      assert.strictEqual(client.writableLength, 0)
      client.write("next;")
      yield* tick
      assert.deepStrictEqual(batches, [1, 1])
      yield* until(() => received() === "alone;next;")
    })))

  it.live("reports backpressure past the socket's buffer, and drains", () =>
    Effect.scoped(Effect.gen(function*() {
      const { client, received } = yield* pair
      coalesceWrites(client)
      const big = "x".repeat(4 * client.writableHighWaterMark)
      assert.isFalse(client.write(big))
      yield* Effect.callback<void>((resume) => void client.once("drain", () => resume(Effect.void)))
      yield* until(() => received().length === big.length)
    })))

  it.live("gives each runner connection's Node socket to the server's handler, and coalesces its writes", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const port = yield* Effect.promise(() =>
        new Promise<number>((resolve) => {
          const probe = Net.createServer().listen(0, "127.0.0.1", () => {
            const { port } = probe.address() as Net.AddressInfo
            probe.close(() => resolve(port))
          })
        })
      )
      const config = Layer.succeed(ShardingConfig.ShardingConfig, {
        ...ShardingConfig.defaults,
        runnerAddress: Option.some(RunnerAddress.make("127.0.0.1", port)),
        runnerListenAddress: Option.none()
      })
      const server = yield* Layer.buildWithScope(layerSocketServer.pipe(Layer.provide(config)), scope)
      let coalesced: boolean | undefined
      yield* SocketServer.SocketServer.pipe(
        Effect.flatMap((s) =>
          s.run((socket) =>
            Effect.scoped(Effect.gen(function*() {
              const conn = yield* Effect.serviceOption(NodeSocket.NetSocket)
              coalesced = Option.isSome(conn) && Object.hasOwn(conn.value, "write") &&
                conn.value.write !== Net.Socket.prototype.write
              const reader = yield* socket.reader
              const writer = yield* socket.writer
              yield* writer.write("hello")
              yield* Effect.ignore(reader.pull)
            }))
          )
        ),
        Effect.provide(server),
        Effect.forkIn(scope)
      )
      // the handler's socket: its write is no longer Node's own
      const seen = yield* Effect.callback<string>((resume) => {
        const conn = Net.createConnection({ host: "127.0.0.1", port })
        conn.on("data", (chunk: Buffer) => {
          conn.destroy()
          resume(Effect.succeed(chunk.toString()))
        })
      })
      assert.strictEqual(seen, "hello")
      assert.isTrue(coalesced, "the handler's Node socket has its writes coalesced")
      yield* Scope.close(scope, Exit.void)
    }))
})
