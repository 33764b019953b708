/**
 * Model and real dispatcher side by side: after every command, every answer,
 * delivery, spawn and live child is compared; at the end of a history, the
 * invariants of "nothing lost" and a clean stop are checked.
 */
import type { Dispatcher } from "effect-dispatcher"
import {
  advanceAll,
  keyAt,
  type Level,
  type Model,
  type Outcome,
  type RequestState,
  sameOutcome,
  showOutcome
} from "./model.js"
import { type Real, sentOf } from "./real.js"

export class Divergence extends Error {
  override readonly name = "Divergence"
}

const show = (u: unknown): string =>
  JSON.stringify(u, (_, v) => (v instanceof Map ? Object.fromEntries(v) : v))

const fail = (model: Model, what: string): never => {
  const tail = model.log.slice(-40).map((line) => `    ${line}`).join("\n")
  throw new Divergence(`${what}\n  model time ${model.now} ms; last model events:\n${tail}`)
}

export const expectEqual = (model: Model, what: string, actual: unknown, expected: unknown): void => {
  if (show(actual) !== show(expected)) fail(model, `${what}: real ${show(actual)}, model ${show(expected)}`)
}

const sortedMap = <V>(map: Map<string, V>): Array<[string, V]> =>
  [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))

/**
 * The models still consistent with everything observed. Usually one; more
 * where two timers due at the same instant could run in either order with
 * different effects (`advanceAll`), until an observation tells them apart.
 */
export class Candidates {
  constructor(public list: Array<Model>) {}
  /** the first candidate: commands are resolved against it (live children agree across candidates) */
  get model(): Model {
    return this.list[0]!
  }
  get rootRunning(): boolean {
    return this.model.rootRunning
  }
  /** Time passes: every order of what is due at the same instant. */
  advance(millis: number): void {
    this.list = this.list.flatMap((m) => advanceAll(m, millis))
  }
}

/** What the real dispatcher shows after a command (the asynchronous part, read once). */
interface Observed {
  readonly children: ReadonlyArray<Dispatcher.ChildInfo>
  readonly stats: Dispatcher.Stats
  /** the downstream dispatcher of "g", as `Dispatcher.tree` shows it */
  readonly inner: Dispatcher.Tree | undefined
  /** the one under "g/h" */
  readonly leaf: Dispatcher.Tree | undefined
}

const byKey = (a: { readonly key: string }, b: { readonly key: string }) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)

/** A level's stats as compared: all of them, `live` and `rejected` included. */
const statsOf = (stats: Dispatcher.Stats) => ({
  accepted: stats.accepted,
  spawned: stats.spawned,
  successors: stats.successors,
  failures: stats.failures,
  withdrawn: stats.withdrawn,
  live: stats.live,
  rejected: stats.rejected
})

const expectedStats = (model: Model, real: Real, level: Level) => ({
  ...level.stats,
  live: model.childrenOf(level).length,
  rejected: rejectedBy(model, real, level)
})

/**
 * One step: `expect` checks the command's own result against each candidate,
 * then everything observable is compared; the candidates that diverge are
 * dropped, and the step fails if none is left (reporting the first one's divergence).
 */
export const step = async (
  candidates: Candidates,
  real: Real,
  when: string,
  expect: (model: Model) => void = () => {}
): Promise<void> => {
  const tree = await real.tree()
  const observed: Observed = {
    children: await real.rootChildren(),
    stats: await real.stats(),
    inner: tree.children.find((c) => c.key === "g")?.downstream,
    leaf: tree.children.find((c) => c.key === "g")?.downstream?.children.find((c) => c.key === "h")?.downstream
  }
  const survivors: Array<Model> = []
  const seen = new Set<string>()
  let first: unknown = undefined
  for (const model of candidates.list) {
    try {
      expect(model)
      compareWith(model, real, observed, when)
      const print = candidates.list.length > 1 ? model.fingerprint() : ""
      if (!seen.has(print)) {
        seen.add(print)
        survivors.push(model)
      }
    } catch (error) {
      if (!(error instanceof Divergence)) throw error
      first ??= error
    }
  }
  if (survivors.length === 0) throw first
  candidates.list = survivors
}

/**
 * A level's `rejected` counters, from the answers given: the dispatcher counts
 * each refusal or error answer it gives (not those it loses to another
 * answer), at the level that gives it, and the answer carries that level's
 * key. So the root counts the answers that carry the request's root key (the
 * downstream keys are not root keys), and a downstream dispatcher those that
 * carry the downstream key of a request it placed, plus the senders it refused
 * as they waited for room (counted even when the request had its answer).
 */
const rejectedBy = (
  model: Model,
  real: Real,
  level: Level
): { tooManyRequests: number; unavailable: number; requestTimeout: number; childFailed: number } => {
  const root = level === model.root
  const waiting = root ? { tooManyRequests: 0, unavailable: 0, childFailed: 0 } : level.refusedWaiters
  const counts = { ...waiting, requestTimeout: 0 }
  for (const [id, state] of model.requests) {
    if (state.answer === undefined) continue
    if (!root && (!state.routedAt.includes(level.id) || state.byWaiter)) continue
    const actual = real.answerOf(id)
    const o = actual === undefined ? undefined : state.answer.find((a) => sameOutcome(a, actual))
    if (o === undefined || !("key" in o) || o.key !== keyAt(state.req, level.depth)) continue
    switch (o._tag) {
      case "TooManyRequests":
        counts.tooManyRequests++
        break
      case "Unavailable":
        counts.unavailable++
        break
      case "RequestTimeout":
        counts.requestTimeout++
        break
      case "ChildFailed":
        counts.childFailed++
    }
  }
  const { childFailed, requestTimeout, tooManyRequests, unavailable } = counts
  return { tooManyRequests, unavailable, requestTimeout, childFailed }
}

/** What a `send` has done: still waiting for room, given the Deferred, or failed. */
const sendState = (real: Real, id: number): RequestState["sent"] | undefined => {
  const record = real.requests.get(id)
  if (record === undefined || record.send === undefined) return undefined
  const sent = sentOf(record)
  return sent === undefined ? "waiting" : sent._tag === "Success" ? "ok" : "refused"
}

/** Everything observable, after one command. */
const compareWith = (model: Model, real: Real, observed: Observed, when: string): void => {
  if (real.violations.length > 0) fail(model, `${when}: ${real.violations.join("; ")}`)
  // every answer so far, and only those
  for (const [id, state] of model.requests) {
    if (state.req.mode === "send") {
      // what `send` itself did: waiting for room, the Deferred, or refused
      const sent = sendState(real, id)
      if (sent !== state.sent) fail(model, `${when}: send #${id} is ${sent ?? "missing"}, the model's is ${state.sent}`)
    }
    const actual = real.answerOf(id)
    if (state.answer === undefined) {
      if (actual !== undefined) fail(model, `${when}: #${id} was answered ${showOutcome(actual)}, the model still waits`)
      continue
    }
    if (actual === undefined) {
      fail(model, `${when}: #${id} is not answered, the model answered ${state.answer.map(showOutcome).join(" | ")}`)
    } else if (!state.answer.some((o) => sameOutcome(o, actual))) {
      fail(
        model,
        `${when}: #${id} was answered ${showOutcome(actual)}, the model allows ${state.answer.map(showOutcome).join(" | ")}`
      )
    }
  }
  // children: which live, how many spawned, what each took or handled
  const live = new Map([...model.liveChildren().keys()].map((path) => [path, 1]))
  expectEqual(model, `${when}: live children`, sortedMap(real.liveChildren()), sortedMap(live))
  expectEqual(model, `${when}: spawns per path`, sortedMap(real.spawns), sortedMap(model.spawns))
  expectEqual(model, `${when}: deliveries per path`, sortedMap(real.delivered), sortedMap(model.delivered))
  const children = [...observed.children].sort(byKey)
  expectEqual(model, `${when}: Dispatcher.children(root)`, children, model.rootChildren().sort(byKey))
  expectEqual(model, `${when}: Dispatcher.stats(root)`, statsOf(observed.stats), expectedStats(model, real, model.root))
  // the downstream dispatchers, through Dispatcher.tree: their live children and their stats
  for (const [path, seen, level] of [["g", observed.inner, model.inner()], ["g/h", observed.leaf, model.leaf()]] as const) {
    if ((seen === undefined) !== (level === undefined)) {
      fail(model, `${when}: Dispatcher.tree(root) ${seen === undefined ? "shows no" : "shows a"} downstream dispatcher for ${path}`)
    }
    if (seen !== undefined && level !== undefined) {
      const children = seen.children.map((c) => ({ key: c.key, mailboxSize: c.mailboxSize, incarnation: c.incarnation }))
      expectEqual(model, `${when}: tree: children of ${path}'s dispatcher`, children.sort(byKey), model.childrenOf(level).sort(byKey))
      expectEqual(model, `${when}: tree: stats of ${path}'s dispatcher`, statsOf(seen.stats), expectedStats(model, real, level))
    }
  }
  // the stop has returned exactly when the model's root has stopped
  const stops = [...real.shutdownFibers.map((f) => ["shutdown", f] as const), ["Scope.close", real.closeFiber] as const]
  for (const [name, fiber] of stops) {
    if (fiber === undefined) continue
    const done = fiber.pollUnsafe() !== undefined
    if (done !== model.rootStopped) {
      fail(model, `${when}: ${name} ${done ? "returned" : "has not returned"}, the model's root is ${model.root.state}`)
    }
  }
}

const isRefusal = (o: Outcome) => o._tag === "TooManyRequests" || o._tag === "Die"

/** The invariants once a history has ended and the root has stopped (for a candidate model). */
export const finalChecks = async (candidates: Candidates, real: Real): Promise<void> => {
  let first: unknown = undefined
  for (const model of candidates.list) {
    try {
      return await finalChecksWith(model, real)
    } catch (error) {
      if (!(error instanceof Divergence)) throw error
      first ??= error
    }
  }
  throw first
}

const finalChecksWith = async (model: Model, real: Real): Promise<void> => {
  if (!model.rootStopped) fail(model, `the model's root has not stopped (${model.root.state})`)
  for (const [id, state] of model.requests) {
    if (state.answer === undefined) fail(model, `the model left #${id} unanswered`)
  }
  // every accepted request is answered exactly once (a Deferred completes once; here: at least once)
  const unanswered = real.unanswered()
  if (unanswered.length > 0) fail(model, `accepted and never answered: ${unanswered.map((id) => `#${id}`).join(", ")}`)
  // no sender waits for room forever
  for (const [id, record] of real.requests) {
    if (record.send !== undefined && sentOf(record) === undefined) fail(model, `send #${id} still waits after the stop`)
  }
  if (real.closeFiber?.pollUnsafe() === undefined) fail(model, "closing the root's Scope has not returned")
  if (real.shutdownFibers.some((f) => f.pollUnsafe() === undefined)) fail(model, "Dispatcher.shutdown has not returned")
  // the root's enclosing finalizers run after all children ended and the leftovers were answered
  const seen = real.rootFinalizer
  if (seen === undefined) fail(model, "the root's enclosing Scope finalizer never ran")
  else if (seen.liveChildren !== 0 || seen.unanswered.length > 0) {
    fail(
      model,
      `the root's enclosing finalizer ran with ${seen.liveChildren} live children and unanswered ${show(seen.unanswered)}`
    )
  }
  // a child's finalizers run exactly once; none is alive
  for (const [instance, runs] of real.finalized) {
    if (runs !== 1) fail(model, `child instance ${instance}: its finalizers ran ${runs} times`)
  }
  if (real.liveCount() !== 0) fail(model, `children still alive after the stop: ${show(real.liveChildren())}`)
  // no fiber started by the dispatcher is alive
  if (real.fibers.started !== real.fibers.ended) {
    fail(model, `fibers started by the dispatcher: ${real.fibers.started}, ended: ${real.fibers.ended}`)
  }
  // every mailbox is empty
  let i = 0
  for (const mailbox of real.mailboxes) {
    i++
    if (mailbox.messages.length > 0) fail(model, `mailbox ${i} still holds ${mailbox.messages.length} requests`)
  }
  // per-key order: a child takes its key's requests in the order they were accepted (ids grow with acceptance)
  const deliveredTo = new Map<number, string>()
  for (const [path, ids] of real.delivered) {
    for (let k = 1; k < ids.length; k++) {
      if (ids[k]! <= ids[k - 1]!) fail(model, `${path} took #${ids[k]} after #${ids[k - 1]}`)
    }
    for (const id of ids) {
      const before = deliveredTo.get(id)
      if (before !== undefined) fail(model, `#${id} delivered twice: to ${before} and ${path}`)
      deliveredTo.set(id, path)
    }
  }
  // a rejected request was never delivered
  for (const [id, record] of real.requests) {
    const answer = real.answerOf(id)
    const sent = sentOf(record)
    const refusedAtOnce = sent !== undefined && sent._tag === "Failure"
    if ((refusedAtOnce || (answer !== undefined && isRefusal(answer))) && deliveredTo.has(id)) {
      fail(model, `#${id} was refused (${answer && showOutcome(answer)}) yet delivered to ${deliveredTo.get(id)}`)
    }
  }
  expectEqual(model, "Dispatcher.stats(root)", statsOf(await real.stats()), expectedStats(model, real, model.root))
}
