import { type Cause, Effect, MutableList, Queue } from "effect"
import type { EnvelopeImpl } from "./envelope.js"

/** @internal */
export type Mailbox = Queue.Queue<EnvelopeImpl<any, any, any>, Cause.Done>

/**
 * Makes a dispatcher's mailboxes: bounded `Queue`s made synchronously, so a new
 * key's mailbox is created inside the one step that places its first request.
 * Each is made exactly as `Queue.bounded` makes one (same prototype, same
 * state), with the dispatcher's scheduler for waking takers instead of the
 * sender's, so a mailbox does not keep a short-lived sender's scheduler alive.
 *
 * @internal
 */
export class Mailboxes {
  private constructor(
    private readonly template: Mailbox,
    readonly capacity: number,
    private readonly noOffers: Set<any>
  ) {}

  /**
   * All mailboxes share one empty, closed line of waiting senders until a
   * sender has to wait for room (`overflow: { wait }`, see `lineUp`): an idle
   * child does not pay for a line nobody stands in.
   */
  static make(capacity: number): Effect.Effect<Mailboxes> {
    return Effect.map(Queue.bounded<EnvelopeImpl<any, any, any>, Cause.Done>(capacity), (template) => {
      const mailboxes = new Mailboxes(template, capacity, new NoOffers())
      // the template is a real Queue.bounded: check that a copy has the same shape
      const copy = mailboxes.make()
      for (const field of Object.keys(template)) {
        if (!(field in copy)) throw new Error(`effect-dispatcher: unexpected Queue field "${field}"`)
      }
      return mailboxes
    })
  }

  /** A sender is about to wait for room in `mailbox`: it gets a line of its own first. */
  lineUp(mailbox: Mailbox): void {
    const state = mailbox.state as { _tag: string; offers: Set<any> }
    if (state._tag === "Open" && state.offers === this.noOffers) state.offers = new Set()
  }

  /** the scheduler the dispatcher's mailboxes and callers are woken on */
  get dispatcher(): Mailbox["dispatcher"] {
    return this.template.dispatcher
  }

  make(): Mailbox {
    const template = this.template
    const self = Object.create(Object.getPrototypeOf(template))
    self.dispatcher = template.dispatcher
    self.capacity = this.capacity
    self.strategy = "suspend"
    self.messages = MutableList.make()
    self.scheduleRunning = false
    self.state = { _tag: "Open", takers: new Set(), offers: this.noOffers, awaiters: new Set() }
    return self
  }
}

/**
 * The line of senders waiting for room of mailboxes nobody waits on yet: a
 * child's `requests` is a `Dequeue`, and the dispatcher gives a mailbox a line
 * of its own before a sender waits in it, so this stays empty. Should anything
 * else try, it fails loudly rather than share a line between mailboxes.
 */
class NoOffers extends Set<any> {
  override add(): this {
    throw new Error("effect-dispatcher: only the dispatcher offers to a child's mailbox")
  }
}
