/**
 * The `echo` handler of each kind (bench/types.ts `Handler`) for the Effect
 * peers: the work W1 asks a child to do for each request. (plain.ts has its own.)
 */
import { Effect } from "effect"
import type { Handler } from "../types.js"

/** The answer `n` as an Effect: at once, from synchronous code, or after one asynchronous hop. */
export const effectHandler = (handler: Handler = "succeed"): (n: number) => Effect.Effect<number> => {
  switch (handler) {
    case "succeed":
      return (n) => Effect.succeed(n)
    case "sync":
      return (n) => Effect.sync(() => n)
    case "async":
      return (n) => Effect.promise(() => Promise.resolve(n))
  }
}

