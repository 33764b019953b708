/**
 * The dispatcher's lifecycle, read top to bottom as Kafka-Pixy's dispatch loop:
 * accept a request (spawning its child on demand), handle a child's end
 * (successor, restart, or forget), and stop (end every mailbox, wait for the
 * children, answer the leftovers).
 *
 * Every decision about the registry happens in one synchronous block: nothing
 * can run between "is the mailbox empty?" and "forget the key / spawn a
 * successor", since a fiber only yields between operations.
 */
import { Cause, Context, Deferred, Duration, Effect, Exit, Fiber, Queue, Schedule, Scope } from "effect"
import { ChildFailed, type DispatchError, TooManyRequests, Unavailable } from "../DispatchError.js"
import { type Core, Running, Stopped, Stopping } from "./core.js"
import { Active, ChildSpecImpl, Entry, Gone, type Holder, Passivating, RecentEntry, Restarting, Reviving } from "./entry.js"
import { EnvelopeImpl, isAnswered, rejectUnsafe } from "./envelope.js"
import type { Mailbox } from "./mailbox.js"

/** @internal */
export const reject = (envelope: EnvelopeImpl<any, any, any>, reason: "unavailable" | "requestTimeout"): boolean =>
  rejectUnsafe(envelope, reason, (envelope.owner as Entry).exitFor(reason))

// -----------------------------------------------------------------------------
// Accepting a request
// -----------------------------------------------------------------------------

/**
 * A sender that must wait for room (`overflow: { wait }`).
 *
 * @internal
 */
export class Wait {
  constructor(readonly entry: Entry, readonly mailbox: Mailbox, readonly envelope: EnvelopeImpl<any, any, any>) {}
}

/**
 * Where a request went: accepted (its envelope), refused (the error), or to wait for room.
 *
 * @internal
 */
export type Placement = EnvelopeImpl<any, any, any> | Exit.Exit<never, DispatchError> | Wait

/** How deep children may run inside senders' calls before waking goes through the scheduler. */
const maxDirectDepth = 8

/**
 * Place one request for `key`, in one synchronous step: find or make the
 * entry, refuse or enqueue, then, last of all, spawn or wake the child (and end
 * the one passivated to make room). Ending or waking a child, or answering a
 * caller, can run that fiber inside this very call, so nothing of the kind
 * happens before the registry is settled. `deferred`, `outerDeadline` and
 * `now` come from the level above in a hierarchy, routing in the same call.
 *
 * @internal
 */
export const place = (
  core: Core,
  key: string,
  request: unknown,
  deferred: Deferred.Deferred<any, any> | undefined,
  outerDeadline: number,
  now?: number
): Placement => {
  if (core.state !== Running) return unavailable(core, key)
  let entry = core.registry.get(key)
  if (entry === undefined) {
    const evicted = makeRoom(core, undefined)
    if (evicted === false) return capReached(core, key)
    if (core.recency === undefined) {
      entry = new Entry(core, key, core.mailboxes.make())
    } else {
      const recent = new RecentEntry(core, key, core.mailboxes.make())
      core.recency.add(recent)
      entry = recent
    }
    core.registry.set(key, entry)
    core.resident++
    const envelope = envelopeFor(core, entry, request, deferred, outerDeadline, now)
    Queue.offerUnsafe(entry.mailbox, envelope)
    accepted(core, entry, envelope)
    spawn(core, entry, 0, true)
    if (evicted !== undefined) endPassivated(core, evicted)
    return envelope
  }
  let mailbox = entry.mailbox
  let evicted: Entry | undefined
  switch (entry.phase) {
    case Passivating: {
      const room = makeRoom(core, entry)
      if (room === false) return capReached(core, key)
      evicted = room
      // its child ends with its own mailbox; a new child takes this one once it has
      mailbox = entry.more.next = core.mailboxes.make()
      entry.phase = Reviving
      core.resident++
      break
    }
    case Reviving:
      mailbox = entry.extra!.next!
  }
  if (mailbox.messages.length >= core.options.capacity) {
    // (never with `evicted`: a revived key's mailbox is new)
    if (core.options.overflowWait === undefined || core.options.overflowWait <= 0) {
      core.tooManyRequests++
      return entry.exitFor("tooManyRequests")
    }
    return new Wait(entry, mailbox, envelopeFor(core, entry, request, deferred, outerDeadline, now))
  }
  const envelope = envelopeFor(core, entry, request, deferred, outerDeadline, now)
  accepted(core, entry, envelope, mailbox)
  if (mailbox === entry.mailbox) {
    // an idle child may take it straight away, without the mailbox: a router routes it in this call,
    // a serve child answers it if its handler is done at once
    const taken = entry.held?.takeDirect?.(envelope) ?? "refused"
    if (taken === "refused") Queue.offerUnsafe(mailbox, envelope)
    if (taken !== "done") wake(core, entry)
  } else {
    // a revived key: its new child starts once the old one has ended
    Queue.offerUnsafe(mailbox, envelope)
    if (evicted !== undefined) endPassivated(core, evicted)
  }
  return envelope
}

/**
 * The child waiting on an entry's mailbox looks again. The library is the
 * only one to put requests in a child's mailbox or end it, and it calls this
 * each time: inside this very call while children do not nest too deep (no
 * scheduler hop, and the child answers before its caller would suspend),
 * else on the next tick.
 *
 * @internal
 */
export const wake = (core: Core, entry: Entry): void => {
  const held = entry.held
  if (held === undefined || !held.isWaiting()) return
  if (core.depth >= maxDirectDepth) {
    entry.mailbox.dispatcher.scheduleTask(() => held.wakeNow(), 0)
    return
  }
  core.depth++
  try {
    held.wakeNow()
  } finally {
    core.depth--
  }
}

/** @internal */
export const envelopeFor = (
  core: Core,
  entry: Entry,
  request: unknown,
  deferred: Deferred.Deferred<any, any> | undefined,
  outerDeadline: number,
  now = core.clock.currentTimeMillisUnsafe()
) =>
  new EnvelopeImpl(
    entry.key,
    request,
    now,
    deferred,
    entry,
    ++entry.seq,
    outerDeadline
  )

/**
 * Book-keeping once a request sits in a mailbox: counts, its deadline, and
 * tracking for a child that might not answer it.
 *
 * @internal
 */
export const accepted = (
  core: Core,
  entry: Entry,
  envelope: EnvelopeImpl<any, any, any>,
  mailbox: Mailbox = entry.mailbox
): void => {
  core.accepted++
  core.recency?.use(entry as RecentEntry)
  if (core.deadlines !== undefined) {
    const deadline = envelope.enqueuedAt + core.options.requestTimeout!
    if (deadline < envelope.deadline) {
      envelope.deadline = deadline
      core.deadlines.add(envelope)
    }
  }
  // what the current child may take; a revived key's new mailbox is for its next child
  if (entry.tracked !== undefined && mailbox === entry.mailbox) track(entry, envelope)
}

const track = (entry: Entry, envelope: EnvelopeImpl<any, any, any>): void => {
  const tracked = entry.tracked!
  tracked.push(envelope)
  if (tracked.length >= 64 && tracked.length % 64 === 0) {
    // drop what was answered; what is left is still in the mailbox or held by the child
    const open = tracked.filter((e) => !isAnswered(e))
    if (open.length * 2 <= tracked.length) entry.tracked = open
  }
}

/**
 * Below the cap (`undefined`), or room made by passivating the least recently
 * used idle child (that entry, to end once the caller is done with the
 * registry), or no room (`false`).
 */
const makeRoom = (core: Core, reviving: Entry | undefined): Entry | undefined | false => {
  if (core.resident < core.options.maxChildren) return undefined
  for (const entry of core.recency!.fromOldest()) {
    if (
      entry !== reviving && entry.phase === Active && entry.fiber !== undefined &&
      entry.mailbox.messages.length === 0
    ) {
      entry.phase = Passivating
      core.resident--
      return entry
    }
  }
  return false
}

/**
 * A passivated child's mailbox ends (it is empty), on the next tick: the child
 * sees `Cause.Done` and ends. Not inside the sender's call, where its end (say,
 * a downstream dispatcher answering its leftovers) would complete other
 * callers inside this one: a concurrent `Effect.forEach` (Effect 4.1) can then
 * run one of its items twice.
 */
const endPassivated = (core: Core, entry: Entry): void => {
  core.mailboxes.dispatcher.scheduleTask(() => {
    Queue.endUnsafe(entry.mailbox)
    wake(core, entry)
  }, 0)
}

const unavailable = (core: Core, key: string): Exit.Exit<never, DispatchError> => {
  core.unavailable++
  const entry = core.registry.get(key)
  return entry !== undefined ? entry.exitFor("unavailable") : Exit.fail(new Unavailable({ key }))
}

const capReached = (core: Core, key: string): Exit.Exit<never, DispatchError> => {
  core.tooManyRequests++
  return Exit.fail(new TooManyRequests({ key, capacity: core.options.maxChildren, limit: "maxChildren" }))
}

// -----------------------------------------------------------------------------
// A child's life
// -----------------------------------------------------------------------------

/**
 * Start the entry's next child: `spawn(spec)` in a fiber and a Scope of its
 * own, the Scope closed as the body ends (its finalizers run before the
 * disposal), then the log line and, after a failure, the restart schedule's
 * next step. The fiber's observer is the disposal, whatever ended it. The first
 * child of a key starts inside the sender's call; successors start on the next
 * tick, so a child that ends at once cannot recurse its successors into the
 * stack.
 */
const spawn = (core: Core, entry: Entry, delay: number, immediate: boolean): void => {
  core.fibers++
  entry.held = undefined
  entry.supervised = true
  const scope = Scope.makeUnsafe()
  entry.scope = scope
  let run: Effect.Effect<unknown, unknown>
  if (delay > 0) {
    // the successor is spawned once the delay has passed; a stop meanwhile cancels it
    entry.phase = Restarting
    core.restarting++
    run = Effect.andThen(
      Effect.sleep(delay),
      Effect.suspend(() => {
        core.restarting--
        return incarnation(core, entry, scope)
      })
    )
  } else {
    run = incarnation(core, entry, scope)
    if (!immediate) run = Effect.andThen(Effect.yieldNow, run)
  }
  const fiber = Effect.runForkWith(Context.add(core.context, Scope.Scope, scope))(run)
  entry.fiber = fiber
  fiber.addObserver((exit) => childEnded(core, entry, exit))
}

/** The child itself: `factory.spawn(spec)`, its Scope closed as it ends. */
const incarnation = (core: Core, entry: Entry, scope: Scope.Closeable): Effect.Effect<unknown, unknown> => {
  entry.phase = Active
  entry.incarnation++
  core.spawned++
  if (entry.incarnation > 1) core.successors++
  // a custom child may take requests and end without answering: track them until it says otherwise
  entry.tracked = mailboxContents(entry.mailbox)
  let body: unknown
  try {
    body = core.factory.spawn(new ChildSpecImpl(entry.key, entry.mailbox, entry))
  } catch (defect) {
    // a spawn that throws while building its effect is a child that died
    body = Effect.die(defect)
  }
  if (!Effect.isEffect(body)) {
    body = Effect.die(new TypeError(`spawn must return an Effect, but returned ${typeof body} for key "${entry.key}"`))
  }
  // the Scope closes as the child ends; a finalizer that fails makes the child's end a failure too
  return Effect.onExit(body as Effect.Effect<unknown, unknown>, (exit) =>
    Effect.flatMap(Effect.exit(Scope.close(scope, exit)), (closed) => {
      if (closed._tag === "Success") return afterChild(core, entry, exit)
      const ended = exit._tag === "Failure" ? Exit.failCause(Cause.combine(exit.cause, closed.cause)) : closed
      return Effect.andThen(afterChild(core, entry, ended), closed)
    }))
}

const headOf = (mailbox: Mailbox): EnvelopeImpl<any, any, any> | undefined => {
  const head = mailbox.messages.head
  return mailbox.messages.length > 0 && head !== undefined ? head.array[head.offset] : undefined
}

const mailboxContents = (mailbox: Mailbox): Array<EnvelopeImpl<any, any, any>> => {
  const out: Array<EnvelopeImpl<any, any, any>> = []
  for (let bucket = mailbox.messages.head; bucket !== undefined; bucket = bucket.next) {
    for (let i = bucket.offset; i < bucket.array.length; i++) out.push(bucket.array[i])
  }
  return out
}

const afterChild = (core: Core, entry: Entry, exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> => {
  if (exit._tag === "Success" || Cause.hasInterruptsOnly(exit.cause)) {
    return logDebug(core, entry, exit._tag === "Success" ? "child ended" : "child interrupted")
  }
  const cause = exit.cause
  const extra = entry.more
  return Effect.gen(function*() {
    extra.failures++
    extra.step ??= yield* Schedule.toStep(core.options.restart)
    const next = yield* Effect.exit(extra.step(core.clock.currentTimeMillisUnsafe(), cause))
    extra.restartDelay = next._tag === "Success" ? Math.max(0, Duration.toMillis(next.value[1])) : -1
    yield* Effect.logWarning(
      extra.restartDelay < 0
        ? `child failed ${extra.failures} times in a row; its restart schedule gave up`
        : "child failed",
      cause
    ).pipe(Effect.annotateLogs({ ...core.annotations, key: entry.key, incarnation: entry.incarnation }))
  })
}

const logDebug = (core: Core, entry: Entry, message: string): Effect.Effect<void> =>
  core.debug
    ? Effect.logDebug(message).pipe(
      Effect.annotateLogs({ ...core.annotations, key: entry.key, incarnation: entry.incarnation })
    )
    : Effect.void

/**
 * The disposal (Go: `Dispose`). Runs as the child's fiber ends, in one block:
 * the mailbox is checked and the registry changed with nothing in between.
 */
const childEnded = (core: Core, entry: Entry, exit: Exit.Exit<unknown, unknown>) => {
  entry.fiber = undefined
  core.fibers--
  // a successor cancelled in its restart delay (by a stop) was never spawned
  if (entry.phase === Restarting) core.restarting--
  const failed = exit._tag === "Failure" && !Cause.hasInterruptsOnly(exit.cause)
  if (failed) {
    core.failures++
    entry.more.lastCause = exit.cause
  }
  // what it took and left unanswered is answered once the registry is settled
  const abandoned = entry.tracked !== undefined ? takenAndUnanswered(entry) : undefined
  entry.tracked = undefined
  const held = entry.held
  entry.held = undefined

  const next = entry.extra?.next
  if (core.state !== Running) {
    core.leftovers.push(entry.mailbox)
    if (next !== undefined) core.leftovers.push(next)
    forget(core, entry)
    answerAbandoned(entry, abandoned, held, failed ? exit.cause : undefined)
    if (core.fibers === 0) finishStop(core)
    return
  }
  dropAnswered(entry.mailbox)
  switch (entry.phase) {
    case Passivating:
      forget(core, entry)
      // passivated with requests waiting (`passivate`) and ended without draining them: like a stop
      refuseLeft(entry.mailbox)
      break
    case Reviving: {
      const extra = entry.extra!
      refuseLeft(entry.mailbox)
      entry.mailbox = next!
      extra.next = undefined
      extra.failures = 0
      extra.step = undefined
      entry.incarnation = 0
      spawn(core, entry, 0, false)
      break
    }
    default:
      if (entry.mailbox.messages.length === 0) forget(core, entry)
      else if (!failed) spawn(core, entry, 0, false)
      else if (entry.extra!.restartDelay < 0) giveUp(core, entry)
      else spawn(core, entry, entry.extra!.restartDelay, false)
  }
  answerAbandoned(entry, abandoned, held, failed ? exit.cause : undefined)
}

/** Of what an ended custom child was handed, the requests it took and did not answer. */
const takenAndUnanswered = (entry: Entry): Array<EnvelopeImpl<any, any, any>> => {
  const next = entry.extra?.next
  const firstUntaken = headOf(entry.mailbox)?.seq ?? (next && headOf(next)?.seq) ?? Infinity
  return entry.tracked!.filter((envelope) => envelope.seq < firstUntaken && !isAnswered(envelope))
}

/**
 * Requests the ended child took and left unanswered (a custom child's, or the
 * batch a `serve` child held): `ChildFailed` if it failed, `Unavailable` if it
 * ended otherwise. Nothing waits forever.
 */
const answerAbandoned = (
  entry: Entry,
  abandoned: ReadonlyArray<EnvelopeImpl<any, any, any>> | undefined,
  held: Holder | undefined,
  cause: Cause.Cause<unknown> | undefined
): void => {
  if (abandoned === undefined && held === undefined) return
  const failed = cause === undefined
    ? undefined
    : Exit.fail(new ChildFailed({ key: entry.key, cause }, { disableChecks: true }))
  if (abandoned !== undefined) {
    for (const envelope of abandoned) {
      if (failed !== undefined) rejectUnsafe(envelope, "childFailed", failed)
      else reject(envelope, "unavailable")
    }
  }
  held?.abandon(failed)
}

/** Expired requests at the head need no successor to skip them. */
const dropAnswered = (mailbox: Mailbox): void => {
  for (let head = headOf(mailbox); head !== undefined && isAnswered(head); head = headOf(mailbox)) {
    Queue.takeUnsafe(mailbox)
  }
}

/** The restart schedule ended: every request waiting for the key gets `ChildFailed`, and the key is forgotten. */
const giveUp = (core: Core, entry: Entry): void => {
  const exit = Exit.fail(new ChildFailed({ key: entry.key, cause: entry.extra!.lastCause }, { disableChecks: true }))
  // senders waiting for room learn why from the entry: forgetting it may stop a downstream dispatcher at once
  entry.extra!.gaveUp = true
  forget(core, entry)
  refuseWaiting(entry.mailbox)
  Queue.endUnsafe(entry.mailbox)
  for (const envelope of drain(entry.mailbox)) rejectUnsafe(envelope, "childFailed", exit)
}

const forget = (core: Core, entry: Entry): void => {
  if (entry.phase === Active || entry.phase === Restarting || entry.phase === Reviving) core.resident--
  entry.phase = Gone
  // the registry holds no other entry for this key while this one lives
  core.registry.delete(entry.key)
  core.recency?.remove(entry as RecentEntry)
  if (core.onIdle !== undefined && core.registry.size === 0 && !core.routing && core.state === Running) {
    core.onIdle()
  }
}

/** What a passivated child left in its ended mailbox is answered `Unavailable`, as at a stop. */
const refuseLeft = (mailbox: Mailbox): void => {
  if (mailbox.messages.length === 0) return
  for (const envelope of drain(mailbox)) reject(envelope, "unavailable")
}

/** Take everything left in a mailbox without waiting (it may be ended). */
const drain = (mailbox: Mailbox): Array<EnvelopeImpl<any, any, any>> => {
  const out: Array<EnvelopeImpl<any, any, any>> = []
  for (;;) {
    const taken = Queue.takeUnsafe(mailbox)
    if (taken === undefined || taken._tag === "Failure") return out
    out.push(taken.value)
  }
}

/** Senders waiting for room (`overflow: { wait }`) are told "not offered". */
const refuseWaiting = (mailbox: Mailbox): void => {
  const state = mailbox.state
  if (state._tag === "Done") return
  for (const offer of state.offers) {
    state.offers.delete(offer)
    if (offer._tag === "Single") offer.resume(Exit.succeed(false))
    else offer.resume(Exit.succeed(offer.remaining.slice(offer.offset)))
  }
}

// -----------------------------------------------------------------------------
// Stopping
// -----------------------------------------------------------------------------

/**
 * End every mailbox (children may drain them), refuse waiting senders, cancel
 * restart delays; `finishStop` runs once the last child has ended.
 *
 * @internal
 */
export const beginStop = (core: Core): void => {
  if (core.state !== Running) return
  core.state = Stopping
  for (const entry of core.registry.values()) {
    refuseWaiting(entry.mailbox)
    const extra = entry.extra
    if (extra?.next !== undefined) {
      refuseWaiting(extra.next)
      core.leftovers.push(extra.next)
      extra.next = undefined
    }
    Queue.endUnsafe(entry.mailbox)
    if (entry.phase === Restarting || entry.held?.interruptOnStop === true) entry.fiber?.interruptUnsafe()
    else wake(core, entry)
  }
  if (core.fibers === 0) finishStop(core)
}

const finishStop = (core: Core): void => {
  if (core.state === Stopped) return
  core.state = Stopped
  const leftovers = core.leftovers
  core.leftovers = []
  for (const mailbox of leftovers) {
    for (const envelope of drain(mailbox)) reject(envelope, "unavailable")
  }
  core.deadlines?.stop()
  core.idleTimers?.stop()
  core.retire()
  Deferred.doneUnsafe(core.stopped, Exit.void)
}

/** @internal */
export const awaitStopped = (core: Core): Effect.Effect<void> => Deferred.await(core.stopped)

/**
 * Begin the stop and wait for its end; from inside one of its own children (or
 * below them), only begin it: waiting would be waiting for oneself.
 *
 * @internal
 */
export const stop = (core: Core): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    beginStop(core)
    if (core.state === Stopped) return Effect.void
    const scope = Context.getOrUndefined(fiber.context, Scope.Scope)
    return scope !== undefined && isWithin(core, scope) ? Effect.void : Deferred.await(core.stopped)
  })

const isWithin = (core: Core, scope: Scope.Scope): boolean => {
  for (const entry of core.registry.values()) {
    if (entry.scope === scope) return true
    const downstream = entry.extra?.downstream
    if (downstream !== undefined && isWithin(downstream, scope)) return true
  }
  return false
}

// -----------------------------------------------------------------------------
// Passivating one key
// -----------------------------------------------------------------------------

/**
 * End one key's child as `maxChildren` would: its mailbox ends, it drains what
 * waits there and ends; a request arriving meanwhile gets a successor once it
 * has. A key waiting out a restart delay has no child to drain its mailbox: what
 * waits is answered `Unavailable` and the successor is cancelled. Waits for the
 * child's end, except from inside one of this dispatcher's children (as `stop`:
 * waiting there could be waiting for oneself).
 *
 * @internal
 */
export const passivate = (core: Core, key: string): Effect.Effect<void> =>
  Effect.withFiber((current) => {
    const entry = core.registry.get(key)
    if (entry === undefined || core.state !== Running) return Effect.void
    const fiber = entry.fiber
    switch (entry.phase) {
      case Active: {
        // (no fiber yet: called from inside the child as it starts, in its spawner's call)
        entry.phase = Passivating
        core.resident--
        refuseWaiting(entry.mailbox)
        Queue.endUnsafe(entry.mailbox)
        wake(core, entry)
        break
      }
      case Restarting: {
        for (const envelope of drain(entry.mailbox)) reject(envelope, "unavailable")
        // its disposal finds the mailbox empty and forgets the key
        fiber?.interruptUnsafe()
        break
      }
    }
    if (fiber === undefined || fiber.pollUnsafe() !== undefined) return Effect.void
    const scope = Context.getOrUndefined(current.context, Scope.Scope)
    return scope !== undefined && (scope === entry.scope || isWithin(core, scope))
      ? Effect.void
      : Effect.asVoid(Fiber.await(fiber))
  })
