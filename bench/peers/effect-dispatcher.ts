/**
 * This project: `Dispatcher.make` + `serve` (and `runChild` for the
 * hierarchy), default options except `mailboxCapacity`, no tracer installed:
 * what a user gets out of the box.
 */
import { Effect, Queue, type Scope } from "effect"
import { Dispatcher } from "effect-dispatcher"
import type { ChildKind, EffectPeer, Handler } from "../types.js"
import { effectHandler } from "./handlers.js"
import { rejectedOn } from "./rejected.js"

interface Request {
  readonly key: string
  readonly n: number
}

interface TreeRequest {
  readonly group: string
  readonly topic: string
  readonly n: number
}

const never = () => Effect.never

const spawnFor = (child: ChildKind, handler: Handler | undefined, serveOptions: Dispatcher.ServeOptions | undefined) => {
  switch (child) {
    case "echo": {
      const answer = effectHandler(handler)
      const echo = (request: Request) => answer(request.n)
      return (spec: Dispatcher.ChildSpec<Request, number>) => Dispatcher.serve(spec, echo, serveOptions)
    }
    case "stuck":
      return (spec: Dispatcher.ChildSpec<Request, number>) => Dispatcher.serve(spec, never, serveOptions)
    case "once":
      // answer the one request, then end; an ended mailbox (at stop) ends it too
      return (spec: Dispatcher.ChildSpec<Request, number>) =>
        Queue.take(spec.requests).pipe(
          Effect.flatMap((envelope) => envelope.succeed(envelope.request.n)),
          Effect.ignore
        )
  }
}

const orRejected = rejectedOn("TooManyRequests")

/**
 * This project with `options` on top of the workload's `mailboxCapacity`, and
 * `serveOptions` for its `serve` children: bench/options.ts measures what each
 * option costs against the defaults.
 */
export const peerWith = (
  options: Omit<Dispatcher.Options, "mailboxCapacity"> = {},
  serveOptions?: Dispatcher.ServeOptions,
  /** something to do with the dispatcher once made, in its Scope (bench/options.ts mounts the inspector) */
  attach?: (dispatcher: Dispatcher.Dispatcher<Request, number>) => Effect.Effect<void, never, Scope.Scope>
): EffectPeer["make"] =>
({ capacity, child, handler }) =>
  Effect.gen(function*() {
    const dispatcher = yield* Dispatcher.make<Request, number>({
      keyOf: (request) => request.key,
      spawn: spawnFor(child, handler, serveOptions)
    }, { ...options, mailboxCapacity: capacity })
    if (attach !== undefined) yield* attach(dispatcher)
    return {
      call: (key: string, n: number) => Dispatcher.call(dispatcher, { key, n }),
      tryCall: (key: string, n: number) => orRejected(Dispatcher.call(dispatcher, { key, n }))
    }
  }).pipe(Effect.orDie)

export const peer: EffectPeer = {
  kind: "effect",
  stopKind: "graceful: its Scope is closed (what `shutdown` does), every mailbox is ended, children drain and end",
  make: peerWith(),
  makeTree: ({ capacity }) =>
    Effect.gen(function*() {
      const topics: Dispatcher.Factory<TreeRequest, number> = {
        keyOf: (request) => request.topic,
        spawn: (spec) => Dispatcher.serve(spec, (request) => Effect.succeed(request.n))
      }
      const groups = yield* Dispatcher.make<TreeRequest, number>({
        keyOf: (request) => request.group,
        spawn: (spec) => Dispatcher.runChild(spec, topics, { mailboxCapacity: capacity })
      }, { mailboxCapacity: capacity })
      return { call: (group: string, topic: string, n: number) => Dispatcher.call(groups, { group, topic, n }) }
    }).pipe(Effect.orDie)
}
