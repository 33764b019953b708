/**
 * The driver of the sharded example: a client-only member of the cluster that
 * deposits to many accounts, each on a fixed schedule (independent callers,
 * whether or not earlier deposits were answered), and prints as it goes which
 * runner serves what share of the accounts and how the calls were answered.
 * Started by `main.ts`, which tells it on stdin what it does to the runners:
 *
 * - `killed <runner> <epoch ms>`: the failover clock starts for that runner's accounts
 * - `started <runner> <epoch ms>`: noted
 * - `stop`: stop calling, wait for the calls in flight, print the summary, exit 0
 *
 * The program is what any caller writes: the `Accounts` tag is a
 * `Dispatcher.Dispatcher`, and only the Layer says it is sharded.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Context, Effect, Exit, Fiber, Layer, Logger, Option, Queue, References, Schedule } from "effect"
import { Dispatcher, Sharded } from "effect-dispatcher"
import { type Balance, clock, type Deposit, Accounts as AccountsEntity, env, exitWhenDone, exitWithParent, timings } from "./shared.js"

class Accounts extends Context.Service<Accounts, Dispatcher.Dispatcher<Deposit, Balance>>()("example/Accounts") {}

const accountCount = Number(process.env["ACCOUNTS"] ?? 200)
const every = "1 second"
const say = (line: string) => Effect.sync(() => console.log(line))

/** What was answered, since the start and in the current window. */
const total = new Map<string, number>()
let window = new Map<string, number>()
/** each account's runner, from its last answer */
const owner = new Map<string, string>()
/** a killed runner's accounts, and when each first answered from another runner */
let failover: { runner: string; at: number; moved: Map<string, number | undefined>; reported: boolean } | undefined
const failovers: Array<{ runner: string; keys: number; max: number; median: number }> = []

const bump = (counts: Map<string, number>, tag: string) => counts.set(tag, (counts.get(tag) ?? 0) + 1)

const record = (account: string, exit: Exit.Exit<Balance, Dispatcher.DispatchError>) => {
  const tag = exit._tag === "Success"
    ? "ok"
    : Option.match(Cause.findErrorOption(exit.cause), { onNone: () => "defect", onSome: (e) => e._tag })
  bump(total, tag)
  bump(window, tag)
  if (exit._tag !== "Success") return
  owner.set(account, exit.value.runner)
  if (failover !== undefined && exit.value.runner !== failover.runner && failover.moved.has(account)) {
    if (failover.moved.get(account) === undefined) failover.moved.set(account, Date.now() - failover.at)
  }
}

const show = (counts: Map<string, number>) => {
  const ok = counts.get("ok") ?? 0
  const failed = [...counts].filter(([tag]) => tag !== "ok").map(([tag, n]) => `${n} ${tag}`)
  return `${ok} ok${failed.length === 0 ? "" : `, ${failed.join(", ")}`}`
}

const shares = () => {
  const byRunner = new Map<string, number>()
  for (const runner of owner.values()) byRunner.set(runner, (byRunner.get(runner) ?? 0) + 1)
  return [...byRunner].sort(([a], [b]) => a.localeCompare(b)).map(([runner, n]) =>
    `${runner} ${String(Math.round((100 * n) / Math.max(1, owner.size))).padStart(3)}%`
  ).join("  ")
}

const report = Effect.suspend(() => {
  const line = `${clock()}  accounts: ${shares()}   calls (2 s): ${show(window)}`
  window = new Map()
  if (failover !== undefined && !failover.reported) {
    const times = [...failover.moved.values()]
    if (times.every((t) => t !== undefined)) {
      const sorted = (times as Array<number>).sort((a, b) => a - b)
      const figures = { runner: failover.runner, keys: sorted.length, max: sorted.at(-1) ?? 0, median: sorted[sorted.length >> 1] ?? 0 }
      failovers.push(figures)
      failover.reported = true
      return say(line).pipe(Effect.andThen(say(
        `         failover: the ${figures.keys} accounts of ${figures.runner} answered again from other runners ` +
          `${(figures.max / 1000).toFixed(1)} s after its SIGKILL (median ${(figures.median / 1000).toFixed(1)} s)`
      )))
    }
  }
  return say(line)
})

const program = Effect.gen(function*() {
  const accounts = yield* Accounts
  const inFlight = new Set<Fiber.Fiber<void>>()
  const deposit = (account: string) =>
    Dispatcher.call(accounts, { account, amount: 1 }).pipe(
      Effect.exit,
      Effect.flatMap((exit) => Effect.sync(() => record(account, exit))),
      Effect.forkDetach,
      Effect.tap((fiber) =>
        Effect.sync(() => {
          inFlight.add(fiber)
          fiber.addObserver(() => inFlight.delete(fiber))
        })
      )
    )
  const keys = Array.from({ length: accountCount }, (_, i) => `account-${i}`)
  yield* say(`${clock()}  driver: ${accountCount} accounts, each called every ${every}`)
  const callers = yield* Effect.forEach(keys, (key, i) =>
    Effect.sleep(Math.floor((i * 1000) / keys.length)).pipe(
      Effect.andThen(Effect.repeat(deposit(key), Schedule.fixed(every))),
      Effect.forkChild
    ))
  const reporter = yield* Effect.forkChild(Effect.repeat(Effect.delay(report, "2 seconds"), Schedule.forever))

  // what the orchestrator does to the runners
  const commands = yield* Queue.unbounded<string>()
  let buffered = ""
  process.stdin.on("data", (chunk) => {
    buffered += chunk.toString()
    let newline: number
    while ((newline = buffered.indexOf("\n")) >= 0) {
      Queue.offerUnsafe(commands, buffered.slice(0, newline).trim())
      buffered = buffered.slice(newline + 1)
    }
  })
  while (true) {
    const [command, runner, at] = (yield* Queue.take(commands)).split(" ")
    if (command === "killed") {
      const moved = new Map<string, number | undefined>()
      for (const [account, by] of owner) if (by === runner) moved.set(account, undefined)
      failover = { runner: runner!, at: Number(at), moved, reported: false }
      yield* say(`${clock()}  SIGKILL ${runner}: ${moved.size} accounts were on it`)
    } else if (command === "started") {
      yield* say(`${clock()}  ${runner} started again: shards rebalance onto it`)
    } else if (command === "stop") break
  }

  yield* Fiber.interruptAll(callers)
  const deadline = Date.now() + 15_000
  while (inFlight.size > 0 && Date.now() < deadline) yield* Effect.sleep("100 millis")
  yield* Fiber.interrupt(reporter)
  yield* report
  const unanswered = inFlight.size
  const calls = [...total.values()].reduce((a, b) => a + b, 0)
  yield* say(`summary: ${calls} calls: ${show(total)}${unanswered === 0 ? "" : `; ${unanswered} unanswered`}`)
  for (const f of failovers) {
    yield* say(
      `summary: failover after SIGKILL of ${f.runner}: ${f.keys} accounts answered again after ${(f.max / 1000).toFixed(1)} s ` +
        `(median ${(f.median / 1000).toFixed(1)} s; shardLockExpiration ${String(timings.shardLockExpiration)})`
    )
  }
  yield* say(`summary: accounts by runner at the end: ${shares()}`)
  if (unanswered > 0) return yield* Effect.fail(new Error(`${unanswered} calls were never answered`))
})

const Live = Sharded.layer(Accounts, AccountsEntity, { unavailableAfter: "5 seconds" }).pipe(
  Layer.provide(Sharded.layerPostgres({ url: env("DATABASE_URL"), clientOnly: true, shardingConfig: timings }))
)

exitWithParent()
NodeRuntime.runMain(
  program.pipe(
    Effect.provide(Live),
    Effect.provideService(References.MinimumLogLevel, "Error"),
    Effect.provide(Logger.layer([Logger.consolePretty()]))
  ),
  { teardown: exitWhenDone }
)
