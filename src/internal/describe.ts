/**
 * Values shown in messages: short, whatever they are (cycles, bigints,
 * functions, a getter that throws), so an error about bad input never
 * fails in turn.
 */

const maxLength = 80

/**
 * `undefined`, `"a"`, `5`, `{"id":1}`, `a Promise`, `a function`; cut at 80 characters.
 *
 * @internal
 */
export const describeValue = (u: unknown): string => {
  if (u === undefined) return "undefined"
  if (u === null) return "null"
  if (typeof u === "function") return "a function"
  if (typeof u === "symbol") return String(u)
  if (typeof u === "bigint") return `${u}n`
  if (isThenable(u)) return "a Promise"
  let text: string
  try {
    text = JSON.stringify(u, (_, value) => (typeof value === "bigint" ? `${value}n` : value)) ?? String(u)
  } catch {
    text = Object.prototype.toString.call(u)
  }
  return text.length > maxLength ? `${text.slice(0, maxLength - 1)}…` : text
}

const isThenable = (u: unknown): boolean =>
  typeof u === "object" && u !== null && typeof (u as { then?: unknown }).then === "function"

/**
 * What a user's function gave where an Effect was expected, and how to fix it:
 * `the handler for key "k" returned a Promise, not an Effect; wrap it in Effect.promise`.
 *
 * @internal
 */
export const notAnEffect = (what: string, key: string, value: unknown): string => {
  const fix = isThenable(value)
    ? "wrap it in Effect.promise (or Effect.tryPromise)"
    : value === undefined
    ? "return an Effect (Effect.void for nothing)"
    : "wrap it in Effect.succeed (or Effect.sync)"
  return `${what} for key ${JSON.stringify(key)} returned ${
    isThenable(value) ? "a Promise" : describeValue(value)
  }, not an Effect; ${fix}`
}
