import { Effect, Exit, Option, Queue } from "effect"
import { ChildFailed, type DispatchError } from "../DispatchError.js"
import type { Core } from "./core.js"
import { accepted, type Wait, wake } from "./dispatcher.js"

/**
 * `overflow: { wait }`: wait in the mailbox's own line of senders (first come,
 * first served) until there is room, or fail `TooManyRequests` when `wait`
 * passes. A stop refuses the waiting senders (`Unavailable`); a key whose
 * restarts gave up answers them `ChildFailed`.
 *
 * @internal
 */
export const waitForRoom = (
  core: Core,
  placement: Wait
): Effect.Effect<Exit.Exit<void, DispatchError>> => {
  const { entry, envelope, mailbox } = placement
  core.mailboxes.lineUp(mailbox)
  return Queue.offer(mailbox, envelope).pipe(
    Effect.timeoutOption(core.options.overflowWait!),
    Effect.map((offered): Exit.Exit<void, DispatchError> => {
      if (Option.isNone(offered)) {
        core.tooManyRequests++
        return entry.exitFor("tooManyRequests")
      }
      if (offered.value) {
        // accepted now: its budget (requestTimeout) starts now, not when it began to wait
        envelope.enqueuedAt = core.clock.currentTimeMillisUnsafe()
        accepted(core, entry, envelope, mailbox)
        if (mailbox === entry.mailbox) wake(core, entry)
        return Exit.void
      }
      if (entry.extra?.gaveUp === true) {
        core.childFailed++
        return Exit.fail(new ChildFailed({ key: entry.key, cause: entry.extra.lastCause }))
      }
      core.unavailable++
      return entry.exitFor("unavailable")
    })
  )
}
