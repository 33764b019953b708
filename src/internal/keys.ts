import { Exit } from "effect"
import type * as Dispatcher from "../Dispatcher.js"

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
    : Exit.die(new TypeError(`keyOf must return a string key, but returned ${describe(key)}`))
}

const describe = (u: unknown): string => {
  if (u === null) return "null"
  if (typeof u === "object") return `an object (${Object.prototype.toString.call(u)})`
  return `${typeof u} ${String(u)}`
}
