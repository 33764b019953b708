/**
 * The engine's sockets, with their writes coalesced.
 *
 * The engine's RPC protocol writes each message to its runner socket on its
 * own (`RpcClient.makeProtocolSocket`, `RpcServer.makeProtocolSocketServer`),
 * and Node sends each write at once: one system call a request and one an
 * answer. Under load that was a tenth of each process's CPU
 * (`writeBuffer`, profiled in bench:sharded), and each side read the other's
 * messages a few at a time. Here the writes made while one batch of fibers
 * runs are held (`cork`) and sent together at the end of it
 * (`process.nextTick` then `uncork`, Node's own recipe for this), or as soon
 * as `mostMessages` are held, so that the peer starts on the first ones while
 * this side still works on the rest (holding a whole batch made client and
 * runner take turns instead of working at once). Same bytes, same order, same
 * protocol: only the number of system calls changes.
 *
 * Measured (bench:sharded, 64 callers, 1 runner, volatile, the raw entity on
 * both): 35% to 55% less CPU a call in client and runner, 1.3x to 1.5x the
 * calls/s of the engine's own sockets; 16 messages was the best of 4, 8, 16,
 * 32 and 64.
 *
 * Node's public API only (`net.Socket`'s `cork`, `uncork` and `write`); the
 * sockets are made and served through `@effect/platform-node`'s public
 * `NodeSocket.fromDuplex` and `SocketServer`.
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import { Effect, Layer, Scope } from "effect"
import * as Runners from "effect/cluster/Runners"
import * as RpcClient from "effect/rpc/RpcClient"
import * as RpcSerialization from "effect/rpc/RpcSerialization"
import * as Socket from "effect/socket/Socket"
import * as SocketServer from "effect/socket/SocketServer"
import * as Net from "node:net"

/** Messages held at most before they are sent (see above). */
export const mostMessages = 16

/**
 * Hold the writes made on `socket` during one run of this process's fibers
 * and send them in one system call, `mostMessages` at a time at most.
 *
 * @internal
 */
export const coalesceWrites = (socket: Net.Socket): void => {
  const write = socket.write
  /** writes held under this writer's one `cork` */
  let held = 0
  const flush = (): void => {
    if (held === 0) return
    held = 0
    socket.uncork()
  }
  socket.write = function(this: Net.Socket, ...args: Parameters<Net.Socket["write"]>) {
    if (held === 0) {
      socket.cork()
      process.nextTick(flush)
    }
    held++
    const accepted = (write as (...args: Parameters<Net.Socket["write"]>) => boolean).apply(this, args)
    if (held >= mostMessages) flush()
    return accepted
  } as Net.Socket["write"]
}

/** Close a connection as `NodeSocket.makeNet` does: gently once open, at once before. */
const close = (conn: Net.Socket, open: boolean): void => {
  if (conn.closed !== false) return
  if (open) conn.destroySoon()
  else conn.destroy()
}

/** A TCP connection to a runner, its writes coalesced: `NodeSocket.makeNet`'s, which gives no hook to reach its socket. */
const connect = (options: Net.NetConnectOpts): Effect.Effect<Net.Socket, Socket.SocketError, Scope.Scope> =>
  Effect.flatMap(Effect.scope, (scope) => {
    let conn: Net.Socket | undefined
    let open = false
    return Effect.andThen(
      Scope.addFinalizer(scope, Effect.sync(() => conn !== undefined && close(conn, open))),
      Effect.callback<Net.Socket, Socket.SocketError>((resume) => {
        conn = Net.createConnection(options)
        coalesceWrites(conn)
        conn.once("connect", () => {
          open = true
          resume(Effect.succeed(conn!))
        })
        conn.on("error", (cause: Error) => {
          resume(Effect.fail(new Socket.SocketError({ reason: new Socket.SocketOpenError({ kind: "Unknown", cause }) })))
        })
      })
    )
  })

/**
 * `NodeClusterSocket.layerClientProtocol`, with the same timeouts, over
 * connections whose writes are coalesced.
 *
 * @internal
 */
export const layerClientProtocol: Layer.Layer<Runners.RpcClientProtocol, never, RpcSerialization.RpcSerialization> =
  Layer.effect(Runners.RpcClientProtocol)(
    Effect.gen(function*() {
      const serialization = yield* RpcSerialization.RpcSerialization
      return {
        codecFor: serialization.codecFor,
        make: Effect.fnUntraced(function*(address) {
          const socket = yield* NodeSocket.fromDuplex(
            connect({ timeout: 5500, host: address.host, port: address.port }),
            { openTimeout: 1000 }
          )
          return yield* RpcClient.makeProtocolSocket().pipe(
            Effect.provideService(Socket.Socket, socket),
            Effect.provideService(RpcSerialization.RpcSerialization, serialization)
          )
        }, Effect.orDie)
      }
    })
  )

/**
 * `NodeClusterSocket.layerSocketServer`, its connections' writes coalesced:
 * the server gives each connection's handler its Node socket.
 *
 * @internal
 */
export const layerSocketServer = Layer.effect(
  SocketServer.SocketServer,
  Effect.map(Effect.service(SocketServer.SocketServer), (server) =>
    SocketServer.SocketServer.of({
      ...server,
      run: (handler) =>
        server.run((socket) =>
          Effect.flatMap(Effect.serviceOption(NodeSocket.NetSocket), (conn) => {
            if (conn._tag === "Some") coalesceWrites(conn.value)
            return handler(socket)
          })
        )
    }))
).pipe(Layer.provide(NodeClusterSocket.layerSocketServer))
