/**
 * A TCP proxy the test controls, between one process and PostgreSQL: `cut`
 * closes every connection through it and refuses new ones (as a network
 * partition that resets connections would), `restore` lets them through again.
 */
import { Effect, type Scope } from "effect"
import * as Net from "node:net"

export interface Proxy {
  readonly port: number
  readonly cut: Effect.Effect<void>
  readonly restore: Effect.Effect<void>
  /** connections accepted so far */
  readonly accepted: () => number
}

export const proxy = (target: { readonly host: string; readonly port: number }): Effect.Effect<Proxy, never, Scope.Scope> =>
  Effect.gen(function*() {
    const sockets = new Set<Net.Socket>()
    let open = true
    let accepted = 0
    const server = Net.createServer((client) => {
      accepted++
      if (!open) return void client.destroy()
      const upstream = Net.connect(target.port, target.host)
      sockets.add(client)
      sockets.add(upstream)
      const close = () => {
        client.destroy()
        upstream.destroy()
        sockets.delete(client)
        sockets.delete(upstream)
      }
      client.on("error", close).on("close", close)
      upstream.on("error", close).on("close", close)
      client.pipe(upstream)
      upstream.pipe(client)
    })
    const port = yield* Effect.acquireRelease(
      Effect.callback<number>((resume) => {
        server.listen(0, "127.0.0.1", () => {
          const address = server.address()
          resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
        })
      }),
      () =>
        Effect.sync(() => {
          for (const socket of sockets) socket.destroy()
          server.close()
        })
    )
    return {
      port,
      cut: Effect.sync(() => {
        open = false
        for (const socket of sockets) socket.destroy()
        sockets.clear()
      }),
      restore: Effect.sync(() => {
        open = true
      }),
      accepted: () => accepted
    }
  })

/** The same URL, through a proxy on `port`. */
export const through = (url: string, port: number): string => {
  const parsed = new URL(url)
  parsed.hostname = "127.0.0.1"
  parsed.port = String(port)
  return parsed.toString()
}
