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
    private readonly noOffers: Set<any> | undefined
  ) {}

  /**
   * `waiting`: whether senders may wait for room (`overflow: { wait }`). If not,
   * nothing ever waits to offer, and all mailboxes share one empty, closed line
   * of waiting senders instead of one each.
   */
  static make(capacity: number, waiting: boolean): Effect.Effect<Mailboxes> {
    return Effect.map(Queue.bounded<EnvelopeImpl<any, any, any>, Cause.Done>(capacity), (template) => {
      const mailboxes = new Mailboxes(template, capacity, waiting ? undefined : new NoOffers())
      // the template is a real Queue.bounded: check that a copy has the same shape
      const copy = mailboxes.make()
      for (const field of Object.keys(template)) {
        if (!(field in copy)) throw new Error(`effect-dispatcher: unexpected Queue field "${field}"`)
      }
      return mailboxes
    })
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
    self.state = { _tag: "Open", takers: new Set(), offers: this.noOffers ?? new Set(), awaiters: new Set() }
    return self
  }
}

/**
 * The line of senders waiting for room, for mailboxes nobody may wait on: a
 * child's `requests` is a `Dequeue`, and the dispatcher never offers with a wait
 * when it rejects at once, so this stays empty. Should anything try, it fails
 * loudly rather than share a line between mailboxes.
 */
class NoOffers extends Set<any> {
  override add(): this {
    throw new Error("effect-dispatcher: only the dispatcher offers to a child's mailbox")
  }
}
