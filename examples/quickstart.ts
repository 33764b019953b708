import { Context, Effect } from "effect"
import { Dispatcher } from "effect-dispatcher"

// One worker per user: requests for the same user are served in order, by one fiber.
interface Deposit { readonly user: string; readonly amount: number }

class Ledger extends Context.Service<Ledger, Dispatcher.Dispatcher<Deposit, number>>()("app/Ledger") {}

const LedgerLive = Dispatcher.layer(Ledger, {
  keyOf: (deposit) => deposit.user,
  spawn: (child) => {
    let balance = 0 // the worker's own state: no locks, one fiber per user
    return Dispatcher.serve(child, (deposit) => Effect.sync(() => (balance += deposit.amount)))
  }
}, { mailboxCapacity: 64, name: "ledger" })

const program = Effect.gen(function*() {
  const ledger = yield* Ledger
  yield* Dispatcher.call(ledger, { user: "ada", amount: 10 })
  const balance = yield* Dispatcher.call(ledger, { user: "ada", amount: 5 })
  yield* Effect.log(`ada's balance: ${balance}`) // 15
})

Effect.runPromise(program.pipe(Effect.provide(LedgerLive)))
