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
import { type Core, isInside, Running, Stopped, Stopping, Within } from "./core.js"
import {
  Active,
  ChildSpecImpl,
  Entry,
  Gone,
  type Holder,
  Passivating,
  Pending,
  RecentEntry,
  reject,
  Restarting,
  Reviving
} from "./entry.js"
import { contentsOf, headOf, refuseWaitingOffers } from "./effectInternals.js"
import { notAnEffect } from "./describe.js"
import { EnvelopeImpl, isAnswered, rejectUnsafe } from "./envelope.js"
import { isWatched, reportFailure } from "./failures.js"
import type { Mailbox } from "./mailbox.js"

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
    const room = makeRoom(core)
    if (room === false) return capReached(core, key)
    entry = register(core, key)
    const envelope = envelopeFor(core, entry, request, deferred, outerDeadline, now)
    // a new mailbox is open and empty: this offer cannot fail
    Queue.offerUnsafe(entry.mailbox, envelope)
    accepted(core, entry, envelope)
    if (room === undefined) spawn(core, entry, 0, true)
    else inherit(core, entry, room)
    return envelope
  }
  let mailbox = entry.mailbox
  let evicted: Entry | undefined
  switch (entry.phase) {
    case Passivating: {
      // passivated for another key, it needs a place of its own; passivated by `passivate`, it has its own still
      const ownPlace = entry.extra?.heir === undefined
      const room = ownPlace ? undefined : makeRoom(core)
      if (room === false) return capReached(core, key)
      if (ownPlace) core.ending--
      evicted = revive(core, entry, room)
      mailbox = entry.extra!.next!
      break
    }
    case Reviving:
      mailbox = entry.extra!.next!
  }
  if (mailbox.messages.length >= core.options.capacity) {
    // (never when revived just now: its mailbox is new)
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
    if (taken === "refused") enqueue(mailbox, envelope)
    if (taken !== "done") wake(core, entry)
  } else {
    // a revived key: its new child starts once the old one has ended
    enqueue(mailbox, envelope)
    if (evicted !== undefined) endPassivated(core, evicted)
  }
  return envelope
}

/** A new key's entry, in the registry (and, with a cap, the most recently used). */
const register = (core: Core, key: string): Entry => {
  let entry: Entry
  if (core.recency === undefined) {
    entry = new Entry(core, key, core.mailboxes.make())
  } else {
    const recent = new RecentEntry(core, key, core.mailboxes.make())
    core.recency.add(recent)
    entry = recent
  }
  core.registry.set(key, entry)
  core.resident++
  return entry
}

/**
 * A request into a mailbox the library keeps open while its key can be
 * placed: it is ended only at a stop (refused above), to passivate (a revived
 * key gets a new one) or on give-up (the key is forgotten first). A child
 * that ended its own mailbox anyway (by a cast) has the request answered
 * rather than lost.
 */
const enqueue = (mailbox: Mailbox, envelope: EnvelopeImpl<any, any, any>): void => {
  if (!Queue.offerUnsafe(mailbox, envelope)) reject(envelope, "unavailable")
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
 * used idle child (that entry: its place goes to the caller's key once its
 * child has ended), or no room (`false`). A passivated entry leaves the
 * recency list, so the search never walks past children already on their way
 * out: O(1) amortised unless old keys hold work.
 */
const makeRoom = (core: Core): Entry | undefined | false => {
  if (core.resident + core.ending < core.options.maxChildren) return undefined
  // every place is held by a key with no child to passivate: restarting, reviving or pending
  if (core.resident === core.restarting + core.reviving + core.pending) return false
  for (const entry of core.recency!.fromOldest()) {
    if (entry.phase === Active && entry.fiber !== undefined && entry.mailbox.messages.length === 0) {
      entry.phase = Passivating
      core.resident--
      core.recency!.remove(entry)
      return entry
    }
  }
  return false
}

/**
 * A new key takes the place of the child passivated for it: its first child
 * starts once that one has ended, so live children never outnumber the cap.
 */
const inherit = (core: Core, heir: Entry, passivated: Entry): void => {
  heir.phase = Pending
  core.pending++
  passivated.more.heir = heir
  endPassivated(core, passivated)
}

/**
 * A request for a key being passivated: its next child gets a new mailbox and
 * starts once the old child has ended, in the old child's place. The key the
 * old child was passivated for now waits for `room` instead (or starts now,
 * if a place is free).
 */
const revive = (core: Core, entry: Entry, room: Entry | undefined): Entry | undefined => {
  const extra = entry.more
  extra.next = core.mailboxes.make()
  entry.phase = Reviving
  core.reviving++
  core.resident++
  // (a passivated entry always has an heir while its dispatcher runs: it was passivated for one)
  const heir = extra.heir
  extra.heir = undefined
  if (room !== undefined) {
    room.more.heir = heir
    return room
  }
  if (heir !== undefined) startHeir(core, heir)
  return undefined
}

/** The place of a passivated child is free: the key waiting for it starts its child (or is forgotten, if nothing waits). */
const startHeir = (core: Core, heir: Entry): void => {
  // (forgotten already if a stop began)
  if (heir.phase !== Pending) return
  core.pending--
  heir.phase = Active
  dropAnswered(heir.mailbox)
  if (heir.mailbox.messages.length === 0) forget(core, heir)
  else spawn(core, heir, 0, false)
}

/**
 * A passivated child's own mailbox ends (it is empty), on the next tick: the
 * child sees `Cause.Done` and ends. The mailbox is taken now: by the time the
 * task runs, the child may have ended by itself and the key been revived with
 * a new one. Not inside the sender's call, where its end (say, a downstream
 * dispatcher answering its leftovers) would complete other callers inside
 * this one: a concurrent `Effect.forEach` (Effect 4.1) can then run one of its
 * items twice.
 */
const endPassivated = (core: Core, entry: Entry): void => {
  const mailbox = entry.mailbox
  core.mailboxes.dispatcher.scheduleTask(() => {
    Queue.endUnsafe(mailbox)
    if (entry.mailbox === mailbox) wake(core, entry)
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
  // The child's end is its last step, not an observer of its fiber: an observer is kept in an array
  // that Effect makes for the fiber, one site for every fiber. Thousands of long-lived children made
  // at once led V8 to allocate every fiber's observer array in the old generation, where the
  // observers of short-lived fibers (an RPC server's, one per request) then kept each request's
  // objects alive through minor GCs: a sharded runner spent 30 ms in each of them instead of 5.
  const fiber = Effect.runForkWith(Context.add(core.childContext, Scope.Scope, scope))(
    Effect.onExit(run, (exit) => Effect.sync(() => childEnded(core, entry, exit)))
  )
  // a child that ended within this very call has been disposed of already (its successor may be in place)
  if (fiber.pollUnsafe() === undefined) entry.fiber = fiber
}

/** The child itself: `factory.spawn(spec)`, its Scope closed as it ends. */
const incarnation = (core: Core, entry: Entry, scope: Scope.Closeable): Effect.Effect<unknown, unknown> => {
  entry.phase = Active
  entry.incarnation++
  core.spawned++
  if (entry.incarnation > 1) core.successors++
  entry.firstSeq = firstUntaken(entry)
  // a custom child may take requests and end without answering: track them until it says otherwise
  entry.tracked = contentsOf(entry.mailbox)
  let body: unknown
  try {
    body = core.factory.spawn(new ChildSpecImpl(entry.key, entry.mailbox, entry))
  } catch (defect) {
    // a spawn that throws while building its effect is a child that died
    body = Effect.die(defect)
  }
  if (!Effect.isEffect(body)) body = Effect.die(new TypeError(notAnEffect("spawn", entry.key, body)))
  // the Scope closes as the child ends; a finalizer that fails makes the child's end a failure too
  return Effect.onExit(body as Effect.Effect<unknown, unknown>, (exit) =>
    Effect.flatMap(Effect.exit(Scope.close(scope, exit)), (closed) => {
      if (closed._tag === "Success") return afterChild(core, entry, exit)
      const ended = exit._tag === "Failure" ? Exit.failCause(Cause.combine(exit.cause, closed.cause)) : closed
      return Effect.andThen(afterChild(core, entry, ended), closed)
    }))
}

/** The `seq` of the first request in the mailbox, or of the next one to come: it moves once a child takes one. */
const firstUntaken = (entry: Entry): number => headOf(entry.mailbox)?.seq ?? entry.seq + 1

/**
 * A child that died before it took a request (a defect at its start: bad
 * options, a spawn that throws or returns no Effect) would die the same way
 * again: it is not restarted.
 */
const diedAtStart = (entry: Entry, cause: Cause.Cause<unknown>): boolean =>
  !Cause.hasFails(cause) && Cause.hasDies(cause) && firstUntaken(entry) === entry.firstSeq

/** A failure is logged each time up to the tenth in a row, then at every power of ten: a key failing in a loop does not flood the log. */
const logged = (failures: number): boolean => failures <= 10 || Number.isInteger(Math.log10(failures))

const afterChild = (core: Core, entry: Entry, exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> => {
  if (exit._tag === "Success" || Cause.hasInterruptsOnly(exit.cause)) {
    return logDebug(core, entry, exit._tag === "Success" ? "child ended" : "child interrupted")
  }
  const cause = exit.cause
  const extra = entry.more
  const annotations = { ...core.annotations, key: entry.key, incarnation: entry.incarnation }
  if (diedAtStart(entry, cause)) {
    extra.failures++
    extra.restartDelay = -1
    return Effect.logWarning("child died before it took a request; not restarted (it would die the same way)", cause)
      .pipe(Effect.annotateLogs(annotations))
  }
  return Effect.gen(function*() {
    extra.failures++
    extra.step ??= yield* Schedule.toStep(core.options.restart)
    const next = yield* Effect.exit(extra.step(core.clock.currentTimeMillisUnsafe(), cause))
    extra.restartDelay = next._tag === "Success" ? Math.max(0, Duration.toMillis(next.value[1])) : -1
    if (extra.restartDelay >= 0 && !logged(extra.failures)) return
    yield* Effect.logWarning(
      extra.restartDelay < 0
        ? `child failed ${extra.failures} times in a row; its restart schedule gave up`
        : extra.failures === 1
        ? "child failed"
        : `child failed ${extra.failures} times in a row`,
      cause
    ).pipe(Effect.annotateLogs(annotations))
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
    if (isWatched(core)) reportFailed(core, entry, exit.cause)
  }
  // what it took and left unanswered is answered once the registry is settled
  const abandoned = entry.tracked !== undefined ? takenAndUnanswered(entry) : undefined
  entry.tracked = undefined
  const held = entry.held
  entry.held = undefined
  entry.scope = undefined

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
    case Passivating: {
      // its place goes to the key it was passivated for
      const heir = entry.extra?.heir
      if (heir !== undefined) entry.extra!.heir = undefined
      forget(core, entry)
      // passivated by `passivate`, with requests waiting, and ended without draining them: as at a stop
      refuseLeft(entry.mailbox)
      if (heir !== undefined) startHeir(core, heir)
      // passivated by `passivate` (no heir): it held its place until now
      else core.ending--
      break
    }
    case Reviving: {
      const extra = entry.extra!
      core.reviving--
      entry.phase = Active
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

/** Someone watches failures (an inspector): tell it, with whether the key gives up now. */
const reportFailed = (core: Core, entry: Entry, cause: Cause.Cause<unknown>): void =>
  reportFailure({
    at: core.clock.currentTimeMillisUnsafe(),
    core,
    key: entry.key,
    incarnation: entry.incarnation,
    cause,
    gaveUp: core.state === Running && entry.phase !== Passivating && entry.phase !== Reviving &&
      entry.extra!.restartDelay < 0
  })

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
  switch (entry.phase) {
    case Pending:
      core.pending--
      core.resident--
      break
    case Reviving:
      core.reviving--
      core.resident--
      break
    case Active:
    case Restarting:
      core.resident--
  }
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
const refuseWaiting = (mailbox: Mailbox): void => refuseWaitingOffers(mailbox)

// -----------------------------------------------------------------------------
// Stopping
// -----------------------------------------------------------------------------

/**
 * End every mailbox (children may drain them), refuse waiting senders, cancel
 * restart delays; `finishStop` runs once the last child has ended. With
 * `shutdownTimeout`, the children still running once it has passed are
 * interrupted (`force`).
 *
 * @internal
 */
export const beginStop = (core: Core): void => {
  if (core.state !== Running) return
  core.state = Stopping
  // first what no child will take (a child ending below may finish the stop at once)
  for (const entry of core.registry.values()) {
    if (entry.phase === Pending) {
      // no child yet: what waits for it is left over
      refuseWaiting(entry.mailbox)
      Queue.endUnsafe(entry.mailbox)
      core.leftovers.push(entry.mailbox)
      forget(core, entry)
      continue
    }
    const extra = entry.extra
    if (extra?.next !== undefined) {
      refuseWaiting(extra.next)
      core.leftovers.push(extra.next)
      extra.next = undefined
    }
  }
  for (const entry of core.registry.values()) {
    refuseWaiting(entry.mailbox)
    Queue.endUnsafe(entry.mailbox)
    if (entry.phase === Restarting || entry.held?.interruptOnStop === true) entry.fiber?.interruptUnsafe()
    else wake(core, entry)
  }
  if (core.fibers === 0) finishStop(core)
  else if (core.options.shutdownTimeout !== undefined) armForce(core, core.options.shutdownTimeout)
}

/** `shutdownTimeout`: once it has passed, the children still running are interrupted. */
const armForce = (core: Core, millis: number): void => {
  if (millis <= 0) return force(core)
  core.forceTimer = Effect.runForkWith(core.context)(
    Effect.andThen(
      Effect.sleep(millis),
      Effect.suspend(() => {
        if (core.state !== Stopping) return Effect.void
        return Effect.andThen(
          Effect.logWarning(`stop waited ${millis} ms (shutdownTimeout) for ${core.live} children; interrupting them`)
            .pipe(Effect.annotateLogs(core.annotations)),
          Effect.sync(() => force(core))
        )
      })
    )
  )
}

/**
 * Interrupt every child still running: what each held is answered
 * `Unavailable` as it ends, and what waits in the mailboxes once all have
 * ended. A downstream level interrupted this way does the same below it.
 *
 * @internal
 */
export const force = (core: Core): void => {
  if (core.state !== Stopping) return
  core.forceTimer = undefined
  for (const entry of core.registry.values()) {
    // a downstream level may be waiting for its own children in a finalizer, where an interruption waits too
    const downstream = entry.extra?.downstream
    if (downstream !== undefined) {
      beginStop(downstream)
      force(downstream)
    }
    entry.fiber?.interruptUnsafe()
  }
}

const finishStop = (core: Core): void => {
  if (core.state === Stopped) return
  core.state = Stopped
  core.forceTimer?.interruptUnsafe()
  core.forceTimer = undefined
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
 * Begin the stop and wait for its end. From inside one of the dispatcher's
 * own children (or below them, however wrapped: `Effect.scoped`, forked, a
 * handler closing the Scope the dispatcher was made in), only begin it:
 * waiting would be waiting for oneself. That child is then stopped like the
 * others.
 *
 * @internal
 */
export const stop = (core: Core): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    beginStop(core)
    if (core.state === Stopped) return Effect.void
    return isInside(core, Context.get(fiber.context, Within)) ? Effect.void : Deferred.await(core.stopped)
  })

// -----------------------------------------------------------------------------
// Passivating one key
// -----------------------------------------------------------------------------

/**
 * End one key's child as `maxChildren` would: its mailbox ends, it drains
 * what waits there and ends; a request arriving meanwhile is served by the
 * key's next child once it has. The child keeps its place under the cap until
 * it has ended. A key with no child running (waiting out a restart delay, or
 * for a place) has what waits for it answered `Unavailable` and is forgotten.
 * Waits for the child's end, except from inside one of this dispatcher's own
 * children (as `stop`: waiting there could be waiting for oneself).
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
        entry.phase = Passivating
        core.resident--
        core.ending++
        core.recency?.remove(entry as RecentEntry)
        refuseWaiting(entry.mailbox)
        Queue.endUnsafe(entry.mailbox)
        wake(core, entry)
        break
      }
      case Reviving: {
        // the next child will not start: what waits for it is answered
        const next = entry.extra!.next!
        entry.extra!.next = undefined
        core.reviving--
        entry.phase = Passivating
        core.resident--
        core.ending++
        core.recency?.remove(entry as RecentEntry)
        refuseWaiting(next)
        refuseLeft(next)
        break
      }
      case Restarting: {
        refuseLeft(entry.mailbox)
        // its disposal finds the mailbox empty and forgets the key
        fiber?.interruptUnsafe()
        break
      }
      case Pending: {
        refuseWaiting(entry.mailbox)
        refuseLeft(entry.mailbox)
        forget(core, entry)
        return Effect.void
      }
    }
    if (fiber === undefined || fiber.pollUnsafe() !== undefined) return Effect.void
    return isInside(core, Context.get(current.context, Within)) ? Effect.void : Effect.asVoid(Fiber.await(fiber))
  })
