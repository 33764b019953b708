/**
 * Where a volatile call stands on its way to a runner, as the engine's
 * transport sees it. The engine retries a volatile request for ever while no
 * runner owns its shard (a caller with no runner up waits until its own
 * timeout) and sends it again to the next owner when its runner dies holding
 * it (so it can run twice). `Sharded.layerPostgres` wraps the engine's
 * `Runners` service so that each attempt reports to the call's probe, found in
 * the context the engine keeps with the outgoing message.
 *
 * Pure Effect: loaded with the package, it never loads cluster code.
 */
import { Context, Effect } from "effect"

/** @internal */
export class Probe {
  /** attempts in flight at a runner right now (the request may be running there) */
  inFlight = 0
  /** handed to this process's own runner: it is there, whatever happens next */
  delivered = false
  private waiter: ((effect: Effect.Effect<void>) => void) | undefined = undefined
  private expired = false

  /** An attempt at a runner ended without an answer (not assigned there, say): the engine will try again. */
  attemptFailed(): void {
    if (this.expired && this.inFlight === 0 && !this.delivered) this.release()
  }

  /**
   * Waits out `millis`, then until the request is neither delivered here nor
   * in flight at a runner: then it has found no runner within the bound.
   */
  unrouted(millis: number): Effect.Effect<void> {
    return Effect.andThen(
      Effect.sleep(millis),
      Effect.callback<void>((resume) => {
        this.expired = true
        if (this.inFlight === 0 && !this.delivered) return resume(Effect.void)
        this.waiter = resume
        return Effect.sync(() => {
          this.waiter = undefined
        })
      })
    )
  }

  private release(): void {
    const waiter = this.waiter
    this.waiter = undefined
    waiter?.(Effect.void)
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
