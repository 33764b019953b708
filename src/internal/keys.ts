import { Exit } from "effect"
import type * as Dispatcher from "../Dispatcher.js"
import { describeValue } from "./describe.js"

/**
 * The request's key, or the defect to answer it with: `keyOf` threw, or gave
 * something that is not a string.
 *
 * @internal
 */
export const keyOf = (
  factory: Dispatcher.Factory<any, any, any, any>,
  request: unknown
): string | Exit.Exit<never, never> => {
  let key: unknown
  try {
    key = factory.keyOf(request)
  } catch (defect) {
    return Exit.die(defect)
  }
  return typeof key === "string"
    ? key
    : Exit.die(
      new TypeError(`keyOf returned ${describeValue(key)} for request ${describeValue(request)}: a key must be a string`)
    )
}
