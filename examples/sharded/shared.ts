/**
 * What every process of the sharded example shares: the entity (what crosses
 * the wire, and the key), the children's factory, and the engine timings.
 */
import { Cause, Effect, Exit, Schema } from "effect"
import { Dispatcher, Sharded } from "effect-dispatcher"

/** A deposit to an account: the account is the key. */
export const Deposit = Schema.Struct({ account: Schema.String, amount: Schema.Number })
export type Deposit = typeof Deposit.Type

/** The account's balance as its child knows it, and which runner holds the account. */
export const Balance = Schema.Struct({ balance: Schema.Number, runner: Schema.String })
export type Balance = typeof Balance.Type

export const Accounts = Sharded.entity("Accounts", {
  request: Deposit,
  success: Balance,
  keyOf: (deposit) => deposit.account
})

/**
 * One child per account, wherever the account's shard lives: the same
 * `Factory` as an in-process dispatcher would run. Its balance lives in memory
 * (a volatile entity: after a failover the account's new child starts from 0;
 * a real ledger would read it from its store, and use `persisted: true` with
 * `Sharded.requestId` for at-least-once deposits).
 */
export const accounts = (runner: string): Dispatcher.Factory<Deposit, Balance> => ({
  keyOf: (deposit) => deposit.account,
  spawn: (child) => {
    let balance = 0
    return Dispatcher.serve(child, (deposit) =>
      Effect.as(Effect.sleep("2 millis"), undefined).pipe(
        Effect.map(() => ({ balance: (balance += deposit.amount), runner }))
      ))
  }
})

export { timings } from "./timings.js"

/** An environment variable the orchestrator sets. */
export const env = (name: string): string => {
  const value = process.env[name]
  if (value === undefined || value === "") throw new Error(`${name} is not set (start the example with npm run sharded)`)
  return value
}

/** Exit when the orchestrator goes, however it went: its pipe to our stdin closes. */
export const exitWithParent = (): void => {
  process.stdin.resume()
  process.stdin.once("close", () => process.exit(3))
  process.stdin.once("end", () => process.exit(3))
}

/** The run's start (the orchestrator's clock), so every process prints the same `t=`. */
export const startedAt = Number(process.env["EXAMPLE_STARTED"] ?? Date.now())

export const clock = (): string => `t=${((Date.now() - startedAt) / 1000).toFixed(0).padStart(3)}s`

/**
 * `NodeRuntime.runMain`'s teardown for these processes: exit as soon as the
 * program is done (0 when it succeeded or was stopped by a signal), without
 * waiting for the stdin pipe of `exitWithParent` to close.
 */
export const exitWhenDone = (exit: Exit.Exit<unknown, unknown>, _onExit: (code: number) => void): void =>
  process.exit(Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : 1)
