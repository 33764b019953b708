/**
 * From one process to many by swapping one Layer: the README's "Scale out"
 * example (the region below is quoted there, and type-checked here). The tag,
 * the factory and the program stay; `Dispatcher.layer` becomes `Sharded.layer`
 * on the callers and `Sharded.runner` on the runner processes. Run as it is,
 * it uses the in-process Layer: npx tsx examples/sharded/one-layer.ts
 */
import { Context, Effect, Layer, Schema } from "effect"
import { Dispatcher, Sharded } from "effect-dispatcher"

// #region readme
const Deposit = Schema.Struct({ account: Schema.String, amount: Schema.Number })
type Deposit = typeof Deposit.Type
class Accounts extends Context.Service<Accounts, Dispatcher.Dispatcher<Deposit, number>>()("app/Accounts") {}

const accounts: Dispatcher.Factory<Deposit, number> = {
  keyOf: (deposit) => deposit.account,
  spawn: (child) => {
    let balance = 0
    return Dispatcher.serve(child, (deposit) => Effect.sync(() => (balance += deposit.amount)))
  }
}
const program = Effect.gen(function*() {
  const ledger = yield* Accounts
  return yield* Dispatcher.call(ledger, { account: "ada", amount: 10 })
})

// one process
const InProcess = Dispatcher.layer(Accounts, accounts, { mailboxCapacity: 64 })
// many processes: callers provide Caller instead, runner processes launch Runner
const AccountsEntity = Sharded.entity("Accounts", { request: Deposit, success: Schema.Number, keyOf: (d) => d.account })
const url = "postgres://postgres@db.internal:5432/app"
const Caller = Sharded.layer(Accounts, AccountsEntity).pipe(Layer.provide(Sharded.layerPostgres({ url, clientOnly: true })))
const Runner = Sharded.runner(AccountsEntity, accounts, { mailboxCapacity: 64 }).pipe(
  Layer.provide(Sharded.layerPostgres({ url, runnerAddress: { host: "10.0.0.5", port: 34431 } }))
)
// #endregion readme

export { Caller, Runner }

Effect.runPromise(program.pipe(Effect.provide(InProcess))).then((balance) => console.log(`ada: ${balance}`))
