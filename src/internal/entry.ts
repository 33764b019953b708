/**
 * A key's place in a dispatcher: its entry (mailbox, child, restart state)
 * and the spec its children are handed.
 */
import type { Cause, Duration, Effect, Fiber, Scope } from "effect"
import { Exit } from "effect"
import type * as Dispatcher from "../Dispatcher.js"
import { type DispatchError, RequestTimeout, TooManyRequests, Unavailable } from "../DispatchError.js"
import type { Core } from "./core.js"
import { type EnvelopeImpl, type Rejection, rejectUnsafe } from "./envelope.js"
import type { Mailbox } from "./mailbox.js"
import type { Recent } from "./recency.js"

// What an entry is doing. All but `Passivating` and `Gone` hold a place under `maxChildren`:
// a passivated child's place is its heir's.

/** @internal a child serves the mailbox */
export const Active = 0
/** @internal a successor waits out its restart delay */
export const Restarting = 1
/** @internal its mailbox was ended to make room for its `heir`; the child is finishing */
export const Passivating = 2
/** @internal passivating, and a request arrived: a new child takes `next` once the old one ends */
export const Reviving = 3
/** @internal forgotten */
export const Gone = 4
/** @internal a new key under `maxChildren`: its first child starts once the child passivated for it has ended */
export const Pending = 5

/**
 * Rarely needed state of an entry, made on first need: restarts after
 * failures, a passivated child's successor mailbox, the error exits.
 *
 * @internal
 */
export class Extra {
  /** the mailbox of the child after a passivated one */
  next: Mailbox | undefined = undefined
  /** passivated to make room for this key (`Pending`): it starts once this entry's child has ended */
  heir: Entry | undefined = undefined
  /** consecutive failures, and the restart schedule's state for them */
  failures = 0
  step: ((now: number, input: unknown) => Effect.Effect<[unknown, Duration.Duration], unknown>) | undefined =
    undefined
  lastCause: Cause.Cause<unknown> | undefined = undefined
  /** millis before the next successor, or -1 to give up; decided as the failed child ends */
  restartDelay = 0
  fullExit: Exit.Exit<never, DispatchError> | undefined = undefined
  unavailableExit: Exit.Exit<never, DispatchError> | undefined = undefined
  timeoutExit: Exit.Exit<never, DispatchError> | undefined = undefined
  /** its restart schedule gave up: the senders still waiting for room get `ChildFailed` */
  gaveUp = false
  /** the dispatcher a `runChild` child runs, for snapshots of the tree */
  downstream: Core | undefined = undefined
}

/**
 * A key's place in the registry: its mailbox (shared by all its successive
 * children), the child now serving it, and how it is doing.
 *
 * @internal
 */
export class Entry {
  phase: number = Active
  fiber: Fiber.Fiber<unknown, unknown> | undefined = undefined
  incarnation = 0
  /** acceptance order, to tell taken requests from those still in the mailbox */
  seq = 0
  /** the `seq` of the first request the current child had not taken when it started */
  firstSeq = 0
  /**
   * Accepted requests that the child may take and not answer. `undefined` while the
   * child's body answers every request it takes itself (`serve`, `runChild`).
   */
  tracked: Array<EnvelopeImpl<any, any, any>> | undefined = undefined
  /** the requests a `serve` child has taken and not yet answered, answered for it if it ends */
  held: Holder | undefined = undefined
  /** spawned by a dispatcher, which handles its end (not a `testChild`'s) */
  supervised = false
  /** the Scope of its current child: fibers running with it are inside the child */
  scope: Scope.Scope | undefined = undefined
  extra: Extra | undefined = undefined

  constructor(readonly core: Core, readonly key: string, public mailbox: Mailbox) {}

  get more(): Extra {
    return (this.extra ??= new Extra())
  }

  /** A child answered a request successfully: its restart backoff starts over. */
  onSuccess(): void {
    const extra = this.extra
    if (extra !== undefined && extra.failures !== 0) {
      extra.failures = 0
      extra.step = undefined
    }
  }

  onRejected(reason: Rejection): void {
    this.core[reason]++
  }

  /** The error exits are made once per key: a TaggedError captures a stack trace, which is costly. */
  exitFor(reason: "tooManyRequests" | "unavailable" | "requestTimeout"): Exit.Exit<never, DispatchError> {
    const extra = this.more
    switch (reason) {
      case "tooManyRequests":
        return (extra.fullExit ??= Exit.fail(
          new TooManyRequests({ key: this.key, capacity: this.core.options.capacity }, { disableChecks: true })
        ))
      case "unavailable":
        return (extra.unavailableExit ??= Exit.fail(new Unavailable({ key: this.key }, { disableChecks: true })))
      case "requestTimeout":
        return (extra.timeoutExit ??= Exit.fail(new RequestTimeout({ key: this.key }, { disableChecks: true })))
    }
  }
}

/**
 * What `spawn` is handed. It keeps the mailbox it was made with: a passivated
 * child keeps its ended mailbox even once its successor has a new one.
 *
 * @internal
 */
export class ChildSpecImpl implements Dispatcher.ChildSpec<any, any, any> {
  constructor(readonly key: string, readonly requests: Mailbox, readonly entry: Entry | undefined) {}
  toJSON(): unknown {
    return { _id: "ChildSpec", key: this.key }
  }
}

/**
 * A child body that answers every request it takes (`serve`, `runChild`) says so,
 * and its dispatcher stops tracking what it took.
 *
 * @internal
 */
export const answersEverything = (spec: Dispatcher.ChildSpec<any, any, any>): void => {
  if (spec instanceof ChildSpecImpl && spec.entry !== undefined) spec.entry.tracked = undefined
}

/**
 * A child body that holds taken requests across waits (`serve`).
 *
 * @internal
 */
export interface Holder {
  /** `serve`'s `onStop: "interrupt"`: a stop interrupts the child instead of letting it drain */
  readonly interruptOnStop: boolean
  abandon(failed: Exit.Exit<never, DispatchError> | undefined): void
  /** Waiting for its mailbox right now? */
  isWaiting(): boolean
  /** The dispatcher put something in its mailbox, or ended it: look again. */
  wakeNow(): void
  /**
   * Take this request at once, without the mailbox, if the body can: a
   * downstream router routes it, a `serve` child answers it or keeps it to run.
   */
  takeDirect?(envelope: EnvelopeImpl<any, any, any>): TakenDirect
  /**
   * How many requests the body has taken from its mailbox and not answered yet,
   * the one it is handling first (`serve`'s batch). Read by `hotKeys`, never on
   * the request path.
   */
  heldCount?(): number
  /** The oldest request the body holds: the one it is handling (`serve`). */
  firstHeld?(): EnvelopeImpl<any, any, any> | undefined
}

/**
 * What `takeDirect` did: nothing (the request goes to the mailbox), all (it is
 * answered or passed on), or took it for the body to run once woken.
 *
 * @internal
 */
export type TakenDirect = "refused" | "done" | "wake"

/**
 * A child body registers itself with its entry, to be woken when the library
 * puts something in its mailbox or ends it. Returns whether a dispatcher
 * supervises it (then its disposal answers what it holds if it ends holding
 * something); a `testChild`'s is not supervised.
 *
 * @internal
 */
export const holds = (entry: Entry, holder: Holder): boolean => {
  entry.held = holder
  return entry.supervised
}

/** @internal */
export const entryOf = (spec: Dispatcher.ChildSpec<any, any, any>): Entry | undefined =>
  spec instanceof ChildSpecImpl ? spec.entry : undefined

/**
 * An entry of a dispatcher with `maxChildren`: also a link in its `Recency`
 * list. Only such a dispatcher pays for the links.
 *
 * @internal
 */
export class RecentEntry extends Entry implements Recent {
  older: Recent | undefined = undefined
  newer: Recent | undefined = undefined
}

/**
 * The dispatcher's own answer to a request: `Unavailable` or `RequestTimeout`
 * for its key, counted where it wins.
 *
 * @internal
 */
export const reject = (envelope: EnvelopeImpl<any, any, any>, reason: "unavailable" | "requestTimeout"): boolean =>
  rejectUnsafe(envelope, reason, (envelope.owner as Entry).exitFor(reason))
