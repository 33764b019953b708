/**
 * Where a volatile call stands on its way to a runner, as the engine's
 * transport sees it. The engine retries a volatile request for ever while no
 * runner owns its shard (a caller with no runner up waits until its own
 * timeout) and sends it again to the next owner when its runner dies holding
 * it (so it can run twice). `Sharded.layerPostgres` wraps the engine's
 * `Runners` service so that each attempt reports to the call's probe, found in
 * the context the engine keeps with the outgoing message; the calling handle
 * gives up on a call that found no runner by its deadline.
 *
 * Pure Effect: loaded with the package, it never loads cluster code.
 */
import { Context } from "effect"

/** @internal */
export class Probe {
  /** attempts in flight at a runner right now (the request may be running there) */
  inFlight = 0
  /** handed to this process's own runner: it is there, whatever happens next */
  delivered = false
  /**
   * The current attempt wrote the request to a runner's connection: it may
   * have reached it. An attempt that fails before any write (the connection
   * could not be opened, or was already known broken) never left this process.
   */
  written = false
  /** its deadline passed */
  expired = false
  /** answers the call `Unavailable` (set by the caller) */
  giveUp: (() => void) | undefined = undefined

  constructor(
    /** Clock millis by which it must have found a runner */
    readonly deadline: number
  ) {}

  /** The handle's sweep: the deadline may have passed. */
  tick(now: number): void {
    if (!this.expired && now >= this.deadline) {
      this.expired = true
      this.check()
    }
  }

  /** An attempt at a runner ended without an answer (not assigned there, say): the engine will try again. */
  attemptFailed(): void {
    this.check()
  }

  /** Past its deadline, and neither delivered here nor in flight at a runner: it found no runner in time. */
  private check(): void {
    if (this.expired && this.inFlight === 0 && !this.delivered) this.giveUp?.()
  }
}

/**
 * The probe of the call being sent, in the caller's context.
 *
 * @internal
 */
export const CurrentProbe = Context.Reference<Probe | undefined>("effect-dispatcher/Sharded/Probe", {
  defaultValue: () => undefined
})

/**
 * Whether this process's cluster layers report to probes (`Sharded.layerPostgres`
 * does); without, a volatile call has no bound on finding a runner.
 *
 * @internal
 */
export const Governed = Context.Reference<boolean>("effect-dispatcher/Sharded/Governed", {
  defaultValue: () => false
})
