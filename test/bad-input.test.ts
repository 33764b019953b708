/**
 * The bad-input table (issue #4, part 5): every public entry, each bad input
 * tried, and what it gets. Each row is a test, and the README's section
 * "Errors and bad input" must list exactly these rows (the last test checks).
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Context, Deferred, Effect, Exit, Fiber, Layer, Queue, Schedule, type Scope } from "effect"
import { TestClock } from "effect/testing"
import { Dispatcher } from "effect-dispatcher"
import { readFileSync } from "node:fs"
import { gatedServe } from "./support/harness.js"
import { captureLogs, quiet, withEnv } from "./support/logs.js"

// -----------------------------------------------------------------------------
// How an outcome is written
// -----------------------------------------------------------------------------

const label = (u: unknown): string => {
  const e = u as { readonly _tag?: string; readonly name?: string; readonly message?: string }
  return `${e?._tag ?? e?.name ?? typeof u}: ${String(e?.message ?? u).replace(/\s*\n\s*/g, " ")}`
}

/** `fails Tag: message`, `dies Tag: message`, or `succeeds` */
const describeExit = (exit: Exit.Exit<unknown, unknown>): string => {
  if (exit._tag === "Success") return "succeeds"
  const reason = exit.cause.reasons[0]
  if (reason?._tag === "Fail") return `fails ${label(reason.error)}`
  if (reason?._tag === "Die") return `dies ${label(reason.defect)}`
  return "is interrupted"
}

const observe = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.map(Effect.exit(effect), describeExit)

// -----------------------------------------------------------------------------
// Fixtures
// -----------------------------------------------------------------------------

const echo: Dispatcher.Factory<string, string> = {
  keyOf: (s) => s,
  spawn: (child) => Dispatcher.serve(child, (s) => Effect.succeed(s))
}

/** children that wait for `gate` before serving, so requests stay in their mailboxes */
const gated = (gate: Deferred.Deferred<void>) => gatedServe(gate, (s: string) => s, Effect.succeed)

class Echo extends Context.Service<Echo, Dispatcher.Dispatcher<string, string>>()("test/bad-input/Echo") {}

const named = (name: string): Dispatcher.Factory<string, string> => ({
  keyOf: (s) => s,
  spawn: (child) => Dispatcher.serve(child, () => Effect.succeed(name))
})


const buildFromEnv = (env: Record<string, string>) =>
  Effect.scoped(Layer.build(Dispatcher.layerConfig(Echo, echo, Dispatcher.config()).pipe(Layer.provide(withEnv(env)))))

const makeWith = (options: unknown) => observe(Effect.scoped(Dispatcher.make(echo, options as Dispatcher.Options)))

const serveWith = (idleTimeToLive: unknown) =>
  Effect.gen(function*() {
    const t = yield* Dispatcher.testChild<string>("k")
    yield* t.end
    return yield* observe(
      Dispatcher.serve(t.spec, () => Effect.void, { idleTimeToLive: idleTimeToLive as Dispatcher.ServeOptions["idleTimeToLive"] & {} })
    )
  })

const notADispatcher = {} as Dispatcher.Dispatcher<any, any, any>


// -----------------------------------------------------------------------------
// The rows
// -----------------------------------------------------------------------------

/**
 * One row: `run` gives the outcome it observed (`fails Tag: message`, `dies Tag:
 * message`), which must equal `outcome`; or, when the outcome is a behaviour in
 * words (Markdown), `check` asserts it.
 */
type Row = {
  readonly entry: string
  /** Markdown */
  readonly input: string
  readonly outcome: string
} & (
  | { readonly run: Effect.Effect<string, unknown, Scope.Scope>; readonly check?: never }
  | { readonly check: Effect.Effect<void, unknown, Scope.Scope>; readonly run?: never }
)

const capacityMessage = (what: string, option: string, value: string) =>
  `${option}: expected ${what} (a positive integer), got ${value}`

const badNumbers: ReadonlyArray<readonly [string, number]> = [
  ["0", 0],
  ["-1", -1],
  ["1.5", 1.5],
  ["NaN", NaN],
  ["Infinity", Infinity]
]

const rows: ReadonlyArray<Row> = [
  // --- make: options -------------------------------------------------------
  ...badNumbers.map(([text, n]): Row => ({
    entry: "make",
    input: `\`{ mailboxCapacity: ${text} }\``,
    outcome: `fails InvalidOptions: ${capacityMessage("a mailbox capacity", "mailboxCapacity", text)}`,
    run: makeWith({ mailboxCapacity: n })
  })),
  {
    entry: "make",
    input: "`{ mailboxCapacity: \"64\" }` (a string)",
    outcome: "fails InvalidOptions: mailboxCapacity: expected number, got \"64\"",
    run: makeWith({ mailboxCapacity: "64" })
  },
  ...badNumbers.map(([text, n]): Row => ({
    entry: "make",
    input: `\`{ maxChildren: ${text} }\``,
    outcome: `fails InvalidOptions: ${capacityMessage("a cap on children", "maxChildren", text)}`,
    run: makeWith({ maxChildren: n })
  })),
  {
    entry: "make",
    input: "`{ name: \"\" }`",
    outcome: "fails InvalidOptions: name: expected a non-empty name, got \"\"",
    run: makeWith({ name: "" })
  },
  {
    entry: "make",
    input: "`{ overflow: \"drop\" }`",
    outcome: "fails InvalidOptions: overflow: expected \"reject\" | object, got \"drop\"",
    run: makeWith({ overflow: "drop" })
  },
  {
    entry: "make",
    input: "`{ overflow: {} }`",
    outcome: "fails InvalidOptions: overflow.wait: Missing key, got undefined",
    run: makeWith({ overflow: {} })
  },
  ...([["-1", -1], ["\"-1 seconds\"", "-1 seconds"], ["\"soon\"", "soon"]] as const).map(([text, wait]): Row => ({
    entry: "make",
    input: `\`{ overflow: { wait: ${text} } }\``,
    outcome:
      `fails InvalidOptions: overflow.wait: expected a duration of zero or more (e.g. "100 millis"), got ${text}`,
    run: makeWith({ overflow: { wait } })
  })),
  {
    entry: "make",
    input: "`{ overflow: { wait: 0 } }`",
    outcome: "accepted: the same as `\"reject\"` (a full mailbox answers `TooManyRequests` at once)",
    check: Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const d = yield* Dispatcher.make(gated(gate), { mailboxCapacity: 1, overflow: { wait: 0 } })
      yield* Dispatcher.send(d, "a")
      const refused = yield* Effect.flip(Dispatcher.send(d, "a"))
      assert.strictEqual(refused._tag, "TooManyRequests")
      yield* Deferred.succeed(gate, undefined)
    })
  },
  ...([
    ["0", 0],
    ["-1", -1],
    ["\"-5 seconds\"", "-5 seconds"],
    ["[-1, 0]", [-1, 0]],
    ["\"soon\"", "soon"],
    ["NaN", NaN]
  ] as const).map(([text, requestTimeout]): Row => ({
    entry: "make",
    input: `\`{ requestTimeout: ${text} }\``,
    outcome: `fails InvalidOptions: requestTimeout: expected a positive duration (e.g. "3 seconds"), got ${
      text === "[-1, 0]" ? "[-1,0]" : text
    }`,
    run: makeWith({ requestTimeout })
  })),
  {
    entry: "make",
    input: "`{ requestTimeout: \"Infinity\" }`",
    outcome: "accepted: no deadline",
    check: Effect.gen(function*() {
      const d = yield* Dispatcher.make(echo, { requestTimeout: "Infinity" })
      assert.strictEqual(yield* Dispatcher.call(d, "a"), "a")
    })
  },
  {
    entry: "make",
    input: "`{ restart: 5 }` (not a Schedule)",
    outcome: "fails InvalidOptions: restart: expected a Schedule, got 5",
    run: makeWith({ restart: 5 })
  },
  {
    entry: "make",
    input: "`{ restart: Schedule.recurs(0) }` (never recurs)",
    outcome:
      "accepted: a child that fails is not restarted; every request waiting for it fails `ChildFailed` at once and the key is forgotten",
    check: Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      let builds = 0
      const d = yield* Dispatcher.make<string, string>({
        keyOf: (s) => s,
        spawn: () => Effect.andThen(Deferred.await(gate), Effect.sync(() => builds++)).pipe(Effect.andThen(Effect.fail("boom")))
      }, { restart: Schedule.recurs(0) })
      const answers = yield* Effect.forEach(["k", "k"], (s) => Dispatcher.send(d, s))
      yield* Deferred.succeed(gate, undefined)
      for (const answer of answers) {
        const error = yield* Effect.flip(Deferred.await(answer))
        assert.deepStrictEqual([error._tag, (error as Dispatcher.DispatchError).key], ["ChildFailed", "k"])
      }
      assert.strictEqual(builds, 1)
      assert.deepStrictEqual(yield* Dispatcher.children(d), [])
    }).pipe(quiet)
  },
  {
    entry: "make",
    input: "`{ mailboxCapacityy: 3 }` (unknown option)",
    outcome:
      "fails InvalidOptions: mailboxCapacityy: unknown option (known: mailboxCapacity, name, overflow, requestTimeout, restart, maxChildren, shutdownTimeout, fence)",
    run: makeWith({ mailboxCapacityy: 3 })
  },
  {
    entry: "make",
    input: "options `5`",
    outcome: "fails InvalidOptions: options: expected an object, got 5",
    run: makeWith(5)
  },
  {
    entry: "make",
    input: "options `null`",
    outcome: "fails InvalidOptions: options: expected an object, got null",
    run: makeWith(null)
  },
  // --- make: the factory ---------------------------------------------------
  {
    entry: "make",
    input: "factory `null`",
    outcome: "fails InvalidOptions: factory: expected an object with keyOf and spawn, got null",
    run: observe(Effect.scoped(Dispatcher.make(null as unknown as Dispatcher.Factory<string>)))
  },
  {
    entry: "make",
    input: "factory `{ spawn }` (no `keyOf`)",
    outcome: "fails InvalidOptions: factory.keyOf: expected a function, got undefined",
    run: observe(Effect.scoped(Dispatcher.make({ spawn: echo.spawn } as unknown as Dispatcher.Factory<string, string>)))
  },
  {
    entry: "make",
    input: "factory `{ keyOf }` (no `spawn`)",
    outcome: "fails InvalidOptions: factory.spawn: expected a function, got undefined",
    run: observe(Effect.scoped(Dispatcher.make({ keyOf: echo.keyOf } as unknown as Dispatcher.Factory<string, string>)))
  },
  {
    entry: "make",
    input: "a `keyOf` that throws `new Error(\"no key\")`",
    outcome: "that `send` dies with it (`dies Error: no key`); the dispatcher goes on serving",
    check: Effect.gen(function*() {
      const d = yield* Dispatcher.make<string, string>({
        keyOf: (s) => {
          if (s === "") throw new Error("no key")
          return s
        },
        spawn: echo.spawn
      })
      assert.strictEqual(yield* observe(Dispatcher.send(d, "")), "dies Error: no key")
      assert.strictEqual(yield* Dispatcher.call(d, "a"), "a")
    })
  },
  {
    entry: "make",
    input: "a `keyOf` that returns `5`",
    outcome: "dies TypeError: keyOf returned 5 for request \"a\": a key must be a string",
    run: Effect.gen(function*() {
      const d = yield* Dispatcher.make<string, string>({ keyOf: () => 5 as unknown as string, spawn: echo.spawn })
      return yield* observe(Dispatcher.send(d, "a"))
    })
  },
  {
    entry: "make",
    input: "a `keyOf` that returns `\"\"`, a 10 KB string or `\"👩‍👩‍👧‍👦\"`",
    outcome: "accepted: ordinary keys, each served by a child of its own",
    check: Effect.gen(function*() {
      const d = yield* Dispatcher.make(echo)
      const keys = ["", "k".repeat(10 * 1024), "👩‍👩‍👧‍👦"]
      for (const key of keys) assert.strictEqual(yield* Dispatcher.call(d, key), key)
      assert.strictEqual((yield* Dispatcher.stats(d)).spawned, keys.length)
    })
  },
  {
    entry: "make",
    input: "a `spawn` that throws while building its effect",
    outcome:
      "a child that died before it took a request: not restarted (it would die the same way), logged once; the request fails `ChildFailed` with the thrown error as its cause",
    check: Effect.gen(function*() {
      let spawns = 0
      const d = yield* Dispatcher.make<string, string>({
        keyOf: (s) => s,
        spawn: () => {
          spawns++
          throw new Error("cannot build")
        }
      })
      const error = yield* Effect.flip(Dispatcher.call(d, "a"))
      assert.strictEqual(error._tag, "ChildFailed")
      assert.match(String((error as Dispatcher.ChildFailed).cause), /cannot build/)
      assert.strictEqual(spawns, 1)
    }).pipe(quiet)
  },
  // --- layer -----------------------------------------------------------------
  {
    entry: "layer",
    input: "`{ mailboxCapacity: 0 }`",
    outcome: `fails InvalidOptions: ${capacityMessage("a mailbox capacity", "mailboxCapacity", "0")}`,
    run: observe(Effect.scoped(Layer.build(Dispatcher.layer(Echo, echo, { mailboxCapacity: 0 }))))
  },
  {
    entry: "layer",
    input: "a tag already provided: `Layer.merge(layer(Tag, a), layer(Tag, b))`",
    outcome: "the later layer's dispatcher serves; both are built and both stop when the scope closes",
    check: Effect.gen(function*() {
      let first: Dispatcher.Dispatcher<string, string> | undefined
      const a = Dispatcher.layer(Echo, named("a")).pipe(Layer.tap((context) => Effect.sync(() => (first = Context.get(context, Echo)))))
      const b = Dispatcher.layer(Echo, named("b"))
      let second: Dispatcher.Dispatcher<string, string> | undefined
      const answer = yield* Effect.gen(function*() {
        second = yield* Echo
        assert.strictEqual(yield* Dispatcher.call(first!, "x"), "a", "the earlier one runs too")
        return yield* Dispatcher.call(second, "x")
      }).pipe(Effect.provide(Layer.merge(a, b)))
      assert.strictEqual(answer, "b")
      assert.notStrictEqual(first, second)
      // the scope has closed: both stopped
      for (const d of [first!, second!]) assert.strictEqual((yield* Effect.flip(Dispatcher.send(d, "x")))._tag, "Unavailable")
    })
  },
  // --- layerConfig / config ------------------------------------------------
  ...([
    ["MAILBOX_CAPACITY", "0", "Expected a value greater than 0"],
    ["MAILBOX_CAPACITY", "many", "Expected a string representing a finite number"],
    ["MAILBOX_CAPACITY", "1.5", "Expected an integer"],
    ["OVERFLOW_WAIT", "-1 seconds", "Expected a duration of zero or more (e.g. \"100 millis\")"],
    ["REQUEST_TIMEOUT", "0 millis", "Expected a positive duration (e.g. \"3 seconds\")"],
    ["REQUEST_TIMEOUT", "soon", "Expected a valid Duration string"],
    ["MAX_CHILDREN", "-3", "Expected a value greater than 0"],
    ["SHUTDOWN_TIMEOUT", "-1 seconds", "Expected a duration of zero or more (e.g. \"30 seconds\")"]
  ] as const).map(([variable, value, expected]): Row => ({
    entry: "layerConfig",
    input: `\`DISPATCHER_${variable}=${value}\``,
    outcome: `fails ConfigError: SchemaError(${expected} at ["DISPATCHER"]["${variable}"])`,
    run: observe(buildFromEnv({ [`DISPATCHER_${variable}`]: value }))
  })),
  {
    entry: "layerConfig",
    input: "`DISPATCHER_NAME=` (empty)",
    outcome: "accepted: an empty variable counts as unset",
    check: Effect.gen(function*() {
      const options = yield* Dispatcher.config().pipe(Effect.provide(withEnv({ DISPATCHER_NAME: "" })))
      assert.deepStrictEqual(options, {})
    })
  },
  // --- runChild ----------------------------------------------------------------
  {
    entry: "runChild",
    input: "`{ maxChildren: 1.5 }`",
    outcome: `fails InvalidOptions: ${capacityMessage("a cap on children", "maxChildren", "1.5")}`,
    run: Effect.flatMap(Dispatcher.testChild<string, string>("k"), (t) => observe(Dispatcher.runChild(t.spec, echo, { maxChildren: 1.5 })))
  },
  {
    entry: "runChild",
    input: "factory `null`",
    outcome: "fails InvalidOptions: factory: expected an object with keyOf and spawn, got null",
    run: Effect.flatMap(
      Dispatcher.testChild<string, string>("k"),
      (t) => observe(Dispatcher.runChild(t.spec, null as unknown as Dispatcher.Factory<string, string>))
    )
  },
  {
    entry: "runChild",
    input: "a spec whose mailbox has already ended",
    outcome: "returns at once",
    check: Effect.gen(function*() {
      const t = yield* Dispatcher.testChild<string, string>("k")
      yield* t.end
      assert.strictEqual(yield* observe(Dispatcher.runChild(t.spec, echo)), "succeeds")
    })
  },
  {
    entry: "runChild",
    input: "a `keyOf` that throws, downstream",
    outcome: "that request is answered with the defect; the others are served",
    check: Effect.gen(function*() {
      const d = yield* Dispatcher.make<string, string>({
        keyOf: () => "group",
        spawn: (child) =>
          Dispatcher.runChild(child, {
            keyOf: (s: string) => {
              if (s === "bad") throw new Error("bad topic")
              return s
            },
            spawn: echo.spawn
          })
      })
      assert.strictEqual(yield* observe(Dispatcher.call(d, "bad")), "dies Error: bad topic")
      assert.strictEqual(yield* Dispatcher.call(d, "good"), "good")
    })
  },
  // --- send / call -------------------------------------------------------------
  {
    entry: "send",
    input: "a stopped dispatcher",
    outcome: "fails Unavailable: the dispatcher serving \"a\" is stopping or stopped",
    run: Effect.gen(function*() {
      const d = yield* Dispatcher.make(echo)
      yield* Dispatcher.shutdown(d)
      return yield* observe(Dispatcher.send(d, "a"))
    })
  },
  {
    entry: "send",
    input: "a stopping dispatcher (children still draining)",
    outcome: "fails Unavailable: the dispatcher serving \"b\" is stopping or stopped",
    run: Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const d = yield* Dispatcher.make(gated(gate))
      const held = yield* Dispatcher.send(d, "a")
      const stopping = yield* Effect.forkChild(Dispatcher.shutdown(d), { startImmediately: true })
      const outcome = yield* observe(Dispatcher.send(d, "b"))
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(stopping)
      assert.strictEqual(yield* Deferred.await(held), "a")
      return outcome
    })
  },
  {
    entry: "send",
    input: "a full mailbox (`mailboxCapacity: 1`)",
    outcome: "fails TooManyRequests: the mailbox of \"a\" is full (capacity 1)",
    run: Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const d = yield* Dispatcher.make(gated(gate), { mailboxCapacity: 1 })
      yield* Dispatcher.send(d, "a")
      const outcome = yield* observe(Dispatcher.send(d, "a"))
      yield* Deferred.succeed(gate, undefined)
      return outcome
    })
  },
  {
    entry: "call",
    input: "a stopped dispatcher",
    outcome: "fails Unavailable: the dispatcher serving \"a\" is stopping or stopped",
    run: Effect.gen(function*() {
      const d = yield* Dispatcher.make(echo)
      yield* Dispatcher.shutdown(d)
      return yield* observe(Dispatcher.call(d, "a"))
    })
  },
  // --- shutdown / awaitStop ------------------------------------------------
  {
    entry: "shutdown",
    input: "called twice",
    outcome: "the second returns at once (idempotent)",
    check: Effect.gen(function*() {
      const d = yield* Dispatcher.make(echo)
      yield* Dispatcher.shutdown(d)
      yield* Dispatcher.shutdown(d)
      yield* Dispatcher.awaitStop(d)
    })
  },
  ...(["shutdown", "awaitStop", "stats", "children"] as const).map((entry): Row => ({
    entry,
    input: "`{}` (not a Dispatcher)",
    outcome: "dies TypeError: expected a Dispatcher made by Dispatcher.make or Dispatcher.layer, got [object Object]",
    run: observe(
      entry === "shutdown"
        ? Dispatcher.shutdown(notADispatcher)
        : entry === "awaitStop"
        ? Dispatcher.awaitStop(notADispatcher)
        : entry === "stats"
        ? Dispatcher.stats(notADispatcher)
        : Dispatcher.children(notADispatcher)
    )
  })),
  {
    entry: "stats",
    input: "a stopped dispatcher",
    outcome: "the final counts, with `live: 0` (and `children` gives `[]`)",
    check: Effect.gen(function*() {
      const d = yield* Dispatcher.make(echo)
      yield* Dispatcher.call(d, "a")
      yield* Dispatcher.shutdown(d)
      const stats = yield* Dispatcher.stats(d)
      assert.deepStrictEqual([stats.accepted, stats.spawned, stats.live], [1, 1, 0])
      assert.deepStrictEqual(yield* Dispatcher.children(d), [])
    })
  },
  // --- serve -------------------------------------------------------------------
  ...([["0", 0], ["-1", -1], ["\"-1 seconds\"", "-1 seconds"], ["\"soon\"", "soon"], ["NaN", NaN]] as const).map((
    [text, ttl]
  ): Row => ({
    entry: "serve",
    input: `\`{ idleTimeToLive: ${text} }\``,
    outcome: `dies InvalidOptions: idleTimeToLive: expected a positive duration (e.g. "15 seconds"), got ${text}`,
    run: serveWith(ttl)
  })),
  {
    entry: "serve",
    input: "`{ idleTimeToLive: \"Infinity\" }`",
    outcome: "accepted: the child never ends for idleness",
    check: Effect.gen(function*() {
      const t = yield* Dispatcher.testChild<string, string>("k")
      const fiber = yield* Effect.forkChild(Dispatcher.serve(t.spec, (s) => Effect.succeed(s), { idleTimeToLive: "Infinity" }))
      assert.strictEqual(yield* Deferred.await(yield* t.offer("a")), "a")
      assert.isUndefined(fiber.pollUnsafe())
      yield* t.end
      yield* Fiber.join(fiber)
    })
  },
  {
    entry: "serve",
    input: "a handler that throws instead of returning an Effect",
    outcome:
      "that request is answered with the thrown error as a defect, as if the handler returned `Effect.die`; the child serves the requests after it",
    check: Effect.gen(function*() {
      const d = yield* Dispatcher.make<string, string>({
        keyOf: () => "k",
        spawn: (child) =>
          Dispatcher.serve(child, (s) => {
            if (s === "bad") throw new Error("handler threw")
            return Effect.succeed(s)
          })
      })
      const [bad, good] = yield* Effect.forEach(["bad", "good"], (s) => Dispatcher.send(d, s))
      const exit = yield* Effect.exit(Deferred.await(bad!))
      assert.isTrue(Exit.isFailure(exit) && Cause.hasDies(exit.cause))
      assert.match(String(Exit.isFailure(exit) ? Cause.squash(exit.cause) : ""), /handler threw/)
      assert.strictEqual(yield* Deferred.await(good!), "good")
      assert.deepStrictEqual([(yield* Dispatcher.stats(d)).spawned, (yield* Dispatcher.stats(d)).failures], [1, 0])
    }).pipe(quiet)
  },
  // --- testChild ---------------------------------------------------------------
  ...badNumbers.map(([text, n]): Row => ({
    entry: "testChild",
    input: `capacity \`${text}\``,
    outcome: `dies InvalidOptions: ${capacityMessage("a mailbox capacity", "mailboxCapacity", text)}`,
    run: observe(Dispatcher.testChild("k", n))
  })),
  {
    entry: "testChild",
    input: "key `5`",
    outcome: "dies TypeError: testChild: key must be a string, got number",
    run: observe(Dispatcher.testChild(5 as unknown as string))
  },
  {
    entry: "testChild",
    input: "`offer` after `end`",
    outcome: "fails Unavailable: the dispatcher serving \"k\" is stopping or stopped",
    run: Effect.gen(function*() {
      const t = yield* Dispatcher.testChild<string>("k")
      yield* t.end
      return yield* observe(t.offer("a"))
    })
  },
  {
    entry: "testChild",
    input: "`offer` to a full mailbox (capacity 1)",
    outcome: "fails TooManyRequests: the mailbox of \"k\" is full (capacity 1)",
    run: Effect.gen(function*() {
      const t = yield* Dispatcher.testChild<string>("k", 1)
      yield* t.offer("a")
      return yield* observe(t.offer("b"))
    })
  },
  // --- Envelope ------------------------------------------------------------------
  {
    entry: "Envelope.reply",
    input: "a second answer to one request",
    outcome: "returns `false`; the first answer stands",
    check: Effect.gen(function*() {
      const t = yield* Dispatcher.testChild<string, string, string>("k")
      const answer = yield* t.offer("a")
      const envelope = yield* Queue.take(t.spec.requests)
      const replies = [
        yield* envelope.succeed("first"),
        yield* envelope.succeed("second"),
        yield* envelope.fail("third"),
        yield* envelope.reply(Exit.succeed("fourth"))
      ]
      assert.deepStrictEqual(replies, [true, false, false, false])
      assert.strictEqual(yield* Deferred.await(answer), "first")
    })
  },
  // --- fixed after the first table (each was poor or a bug) -------------------------
  ...(["send", "call"] as const).map((entry): Row => ({
    entry,
    input: "`undefined` for the dispatcher",
    outcome: "dies TypeError: expected a Dispatcher made by Dispatcher.make or Dispatcher.layer, got undefined",
    run: entry === "send"
      ? observe(Dispatcher.send(undefined as unknown as Dispatcher.Dispatcher<string, string>, "a"))
      : observe(Dispatcher.call(undefined as unknown as Dispatcher.Dispatcher<string, string>, "a"))
  })),
  {
    entry: "make",
    input: "a `spawn` that returns `undefined` instead of an Effect",
    outcome:
      "fails ChildFailed: the child serving \"a\" failed: TypeError: spawn for key \"a\" returned undefined, not an Effect; return an Effect (Effect.void for nothing)",
    run: Effect.gen(function*() {
      const d = yield* Dispatcher.make<string, string>({ keyOf: (s) => s, spawn: () => undefined as never })
      return yield* observe(Dispatcher.call(d, "a"))
    }).pipe(quiet)
  },
  {
    entry: "make",
    input: "a `spawn` that returns a Promise",
    outcome:
      "fails ChildFailed: the child serving \"a\" failed: TypeError: spawn for key \"a\" returned a Promise, not an Effect; wrap it in Effect.promise (or Effect.tryPromise)",
    run: Effect.gen(function*() {
      const d = yield* Dispatcher.make<string, string>({ keyOf: (s) => s, spawn: () => Promise.resolve() as never })
      return yield* observe(Dispatcher.call(d, "a"))
    }).pipe(quiet)
  },
  ...([["a Promise", () => Promise.resolve("x"), "a Promise, not an Effect; wrap it in Effect.promise (or Effect.tryPromise)"], [
    "`undefined`",
    () => undefined,
    "undefined, not an Effect; return an Effect (Effect.void for nothing)"
  ], ["a plain value", () => "x", "\"x\", not an Effect; wrap it in Effect.succeed (or Effect.sync)"]] as const).map((
    [what, handler, said]
  ): Row => ({
    entry: "serve",
    input: `a handler that returns ${what} instead of an Effect`,
    outcome:
      `fails ChildFailed: the child serving "a" failed: TypeError: the handler for key "a" returned ${said}`,
    run: Effect.suspend(() => {
      const logs = captureLogs()
      return Effect.gen(function*() {
      const d = yield* Dispatcher.make<string, string>({
        keyOf: () => "a",
        spawn: (child) => Dispatcher.serve(child, (s) => (s === "good" ? Effect.succeed(s) : handler() as never))
      })
      const first = yield* observe(Dispatcher.call(d, "bad"))
      // said once in the log; the child goes on serving
      assert.strictEqual(yield* observe(Dispatcher.call(d, "bad")), first)
      assert.strictEqual(yield* Dispatcher.call(d, "good"), "good")
      assert.strictEqual(logs.entries.filter((e) => e.level === "Warn").length, 1)
      const stats = yield* Dispatcher.stats(d)
      assert.deepStrictEqual([stats.spawned, stats.failures, stats.rejected.childFailed], [1, 0, 2])
      return first
    }).pipe(Effect.provide(logs.layer))
    })
  })),
  {
    entry: "make",
    input: "`spawn: Dispatcher.serveWith(handler, { idleTimeToLive: 0 })`",
    outcome:
      "fails InvalidOptions: factory.spawn (serveWith): idleTimeToLive: expected a positive duration (e.g. \"15 seconds\"), got 0",
    run: observe(Effect.scoped(Dispatcher.make({ keyOf: (s: string) => s, spawn: Dispatcher.serveWith(Effect.succeed, { idleTimeToLive: 0 }) })))
  },
  {
    entry: "serve",
    input: "`{ idleTimeToLive: -1 }` in a dispatcher's child",
    outcome:
      "the child dies of `InvalidOptions` before it took a request: not restarted, logged once; the request fails `ChildFailed` naming the option and the value",
    check: Effect.gen(function*() {
      let spawns = 0
      const d = yield* Dispatcher.make<string, string>({
        keyOf: (s) => s,
        spawn: (child) => {
          spawns++
          return Dispatcher.serve(child, Effect.succeed, { idleTimeToLive: -1 })
        }
      })
      const error = yield* Effect.flip(Dispatcher.call(d, "a"))
      assert.strictEqual(error.message, "the child serving \"a\" failed: InvalidOptions: idleTimeToLive: expected a positive duration (e.g. \"15 seconds\"), got -1")
      assert.strictEqual(spawns, 1)
    }).pipe(quiet)
  },
  ...([["-1", -1], ["\"soon\"", "soon"], ["NaN", NaN]] as const).map(([text, value]): Row => ({
    entry: "make",
    input: `\`{ shutdownTimeout: ${text} }\``,
    outcome:
      `fails InvalidOptions: shutdownTimeout: expected a duration of zero or more (e.g. "30 seconds"), got ${text}`,
    run: makeWith({ shutdownTimeout: value })
  })),
  {
    entry: "make",
    input: "a child whose finalizer dies",
    outcome: "its end counts as a failure: restarts are paced by the schedule and give up with `ChildFailed`",
    check: Effect.gen(function*() {
      let spawns = 0
      const d = yield* Dispatcher.make<string, string>({
        keyOf: (s) => s,
        spawn: () => {
          spawns++
          return Effect.addFinalizer(() => Effect.die("finalizer")).pipe(Effect.andThen(Effect.fail("boom")))
        }
      }, { restart: Schedule.recurs(2) })
      const error = yield* Effect.flip(Dispatcher.call(d, "a"))
      assert.strictEqual(error._tag, "ChildFailed")
      assert.strictEqual(spawns, 3)
    }).pipe(quiet)
  },
  {
    entry: "shutdown",
    input: "called from inside one of the dispatcher's own children",
    outcome: "begins the stop and returns at once (waiting would wait for itself); the stop completes once the child ends",
    check: Effect.gen(function*() {
      const self = yield* Deferred.make<Dispatcher.Dispatcher<string, string>>()
      const d = yield* Dispatcher.make<string, string>({
        keyOf: (s) => s,
        spawn: (child) =>
          Dispatcher.serve(child, (s) =>
            Effect.flatMap(Deferred.await(self), (d) => Effect.as(Dispatcher.shutdown(d), `${s} stopped it`)))
      })
      yield* Deferred.succeed(self, d)
      assert.strictEqual(yield* Dispatcher.call(d, "a"), "a stopped it")
      yield* Dispatcher.awaitStop(d)
    })
  },
  {
    entry: "shutdown",
    input: "called from inside a child in `Effect.scoped`, nested scopes or a forked fiber, at any depth of a tree",
    outcome: "the same: begins the stop and returns at once (`test/stop.test.ts` tries every wrapping)",
    check: Effect.gen(function*() {
      const self = yield* Deferred.make<Dispatcher.Dispatcher<string, string>>()
      const d = yield* Dispatcher.make<string, string>({
        keyOf: (s) => s,
        spawn: (child) =>
          Dispatcher.serve(child, (s) =>
            Effect.flatMap(Deferred.await(self), (d) =>
              Effect.as(Effect.scoped(Effect.flatMap(Effect.forkChild(Dispatcher.shutdown(d)), Fiber.join)), `${s} stopped it`)))
      })
      yield* Deferred.succeed(self, d)
      assert.strictEqual(yield* Dispatcher.call(d, "a"), "a stopped it")
      yield* Dispatcher.awaitStop(d)
    })
  },
  {
    entry: "make",
    input: "a child that never ends (a handler stuck for ever, or one that `call`s its own key), with `{ shutdownTimeout: \"1 second\" }`",
    outcome: "a stop interrupts it once the second has passed; what it held is answered `Unavailable` and the stop finishes (without `shutdownTimeout` the stop waits for it)",
    check: Effect.gen(function*() {
      const d = yield* Dispatcher.make<string, string>({ keyOf: (s) => s, spawn: (child) => Dispatcher.serve(child, () => Effect.never) }, {
        shutdownTimeout: "1 second"
      })
      const held = yield* Dispatcher.send(d, "a")
      const stopping = yield* Effect.forkChild(Dispatcher.shutdown(d))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(stopping)
      assert.strictEqual((yield* Effect.flip(Deferred.await(held)))._tag, "Unavailable")
    }).pipe(quiet)
  },
  {
    entry: "send",
    input: "a new key when `maxChildren` children live and each has work waiting",
    outcome: "fails TooManyRequests: no room for a child for \"b\": 1 children live (maxChildren) and each has work waiting",
    run: Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const d = yield* Dispatcher.make(gated(gate), { maxChildren: 1 })
      yield* Dispatcher.send(d, "a")
      const outcome = yield* observe(Dispatcher.send(d, "b"))
      yield* Deferred.succeed(gate, undefined)
      return outcome
    })
  },
  {
    entry: "make",
    input: "`{ overflow: { wait: NaN } }`",
    outcome:
      "fails InvalidOptions: overflow.wait: expected a duration of zero or more (e.g. \"100 millis\"), got NaN",
    run: makeWith({ overflow: { wait: NaN } })
  },
  {
    entry: "make",
    input: "`{ fence: true }` (not a function)",
    outcome: "fails InvalidOptions: fence: expected a function of the key, got true",
    run: makeWith({ fence: true })
  },
  {
    entry: "make",
    input: "a `fence` that throws",
    outcome:
      "fenced: the request is answered `Unavailable` and no handler runs for it; the dispatcher goes on serving the keys it admits",
    check: Effect.gen(function*() {
      const handled: Array<string> = []
      const d = yield* Dispatcher.make<string, string>({
        keyOf: (s) => s,
        spawn: (child) => Dispatcher.serve(child, (s) => Effect.sync(() => (handled.push(s), s)))
      }, {
        fence: (key) => {
          if (key === "a") throw new Error("no lease")
          return true
        }
      })
      const refused = yield* Effect.flip(Dispatcher.call(d, "a"))
      assert.deepStrictEqual([refused._tag, refused.key], ["Unavailable", "a"])
      assert.strictEqual(yield* Dispatcher.call(d, "b"), "b")
      assert.deepStrictEqual(handled, ["b"])
      assert.strictEqual((yield* Dispatcher.stats(d)).rejected.unavailable, 1)
    })
  }
]

// -----------------------------------------------------------------------------
// The README table
// -----------------------------------------------------------------------------

const cell = (text: string) => text.replace(/\|/g, "\\|")

/** Errors are shown as code; behaviour in words. */
const renderOutcome = (outcome: string) =>
  /^(fails|dies) /.test(outcome) ? `\`${cell(outcome)}\`` : cell(outcome)

const renderRow = (row: Row) => `| \`${row.entry}\` | ${cell(row.input)} | ${renderOutcome(row.outcome)} |`

const readmeRows = (): ReadonlyArray<string> => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8")
  const start = readme.indexOf("\n## Errors and bad input\n")
  assert.isAtLeast(start, 0, "README has a section \"## Errors and bad input\"")
  const end = readme.indexOf("\n## ", start + 1)
  const lines = readme.slice(start, end < 0 ? undefined : end).split("\n")
  const header = lines.indexOf("| Entry | Bad input | What you get |")
  assert.isAtLeast(header, 0, "the section has the table")
  return lines.slice(header + 2).filter((line) => line.startsWith("|"))
}

describe("bad input: every public entry", () => {
  for (const row of rows) {
    it.effect(`${row.entry}: ${row.input} -> ${row.outcome}`, () =>
      Effect.gen(function*() {
        if (row.run !== undefined) assert.strictEqual(yield* row.run, row.outcome)
        else yield* row.check
      }).pipe(Effect.scoped))
  }

  // BAD_INPUT_TABLE=1 npx vitest run test/bad-input.test.ts prints the table to paste into the README
  it("the README's table lists exactly these rows", () => {
    if (process.env.BAD_INPUT_TABLE) {
      console.log(["| Entry | Bad input | What you get |", "|---|---|---|", ...rows.map(renderRow)].join("\n"))
    }
    assert.deepStrictEqual(readmeRows(), rows.map(renderRow))
  })
})
