/**
 * `npm start`'s program as a process: it starts from `PIXY_*` variables, and
 * SIGTERM with long polls in flight answers each 503 and exits 0. (A bad
 * setting is covered by config.test.ts: the Layer fails, so start-up stops.)
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import type { Dispatcher } from "effect-dispatcher"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../..", import.meta.url))

/** Run examples/pixy/main.ts on this Node with tsx; its output is collected as it comes. */
const startMain = (env: Record<string, string>) =>
  Effect.gen(function*() {
    const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
    const handle = yield* spawner.spawn(
      ChildProcess.make(process.execPath, ["--import", "tsx", "examples/pixy/main.ts"], {
        cwd: root,
        extendEnv: true,
        env,
        forceKillAfter: "10 seconds"
      })
    )
    const listening = yield* Deferred.make<string>()
    const output: Array<string> = []
    const reader = yield* handle.all.pipe(
      Stream.decodeText(),
      Stream.splitLines,
      Stream.runForEach((line) =>
        Effect.gen(function*() {
          output.push(line)
          const url = /Listening on (http:\/\/\S+)/.exec(line)?.[1]
          if (url !== undefined) yield* Deferred.succeed(listening, url)
        })
      ),
      Effect.forkChild
    )
    return { handle, listening, output, reader }
  })

const poll = (url: string) =>
  Effect.tryPromise(async () => {
    const response = await fetch(url)
    return { status: response.status, body: await response.json() }
  })

describe("pixy main", () => {
  it.live("SIGTERM during long polls: each is answered 503, the process exits 0", () =>
    Effect.gen(function*() {
      const main = yield* startMain({ PIXY_PORT: "0", PIXY_LONG_POLLING_TIMEOUT: "20 seconds" })
      const url = yield* Deferred.await(main.listening)
      const polls = yield* Effect.forkChild(
        Effect.forEach([1, 2, 3], (i) => poll(`${url}/topics/t${i}/messages?group=g${i}`), { concurrency: "unbounded" })
      )
      // wait until the three are in the tree
      for (;;) {
        const tree = yield* Effect.tryPromise(() => fetch(`${url}/_stats`).then((r) => r.json() as Promise<Dispatcher.Tree>))
        if (tree.stats.accepted === 3) break
        yield* Effect.sleep("25 millis")
      }
      const start = Date.now()
      yield* main.handle.kill({ killSignal: "SIGTERM" })
      const exitCode = yield* main.handle.exitCode
      const replies = yield* Fiber.join(polls)
      yield* Fiber.join(main.reader)
      assert.strictEqual(Number(exitCode), 0, main.output.join("\n"))
      assert.deepStrictEqual(replies.map((r) => r.status), [503, 503, 503])
      assert.isBelow(Date.now() - start, 5_000)
      assert.isTrue(main.output.some((line) => line.includes("group deregistered")), main.output.join("\n"))
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)), 30_000)
})
