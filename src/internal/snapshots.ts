/**
 * What a dispatcher reports of itself: stats, live children, the whole tree.
 */
import type * as Dispatcher from "../Dispatcher.js"
import type { Core } from "./core.js"
import { Restarting } from "./entry.js"

/** @internal */
export const stats = (core: Core): Dispatcher.Stats => ({
  live: core.live,
  spawned: core.spawned,
  successors: core.successors,
  failures: core.failures,
  accepted: core.accepted,
  withdrawn: core.withdrawn,
  rejected: {
    tooManyRequests: core.tooManyRequests,
    unavailable: core.unavailable,
    requestTimeout: core.requestTimeout,
    childFailed: core.childFailed
  }
})

/** @internal */
export const tree = (core: Core): Dispatcher.Tree => {
  const out: Array<Dispatcher.TreeChild> = []
  for (const entry of core.registry.values()) {
    if (entry.fiber === undefined || entry.phase === Restarting) continue
    const downstream = entry.extra?.downstream
    const info = {
      key: entry.key,
      mailboxSize: entry.mailbox.messages.length + (entry.extra?.next?.messages.length ?? 0),
      incarnation: entry.incarnation
    }
    out.push(downstream === undefined ? info : { ...info, downstream: tree(downstream) })
  }
  return { name: core.options.name, path: core.path, stats: stats(core), children: out }
}

/** @internal */
export const children = (core: Core): ReadonlyArray<Dispatcher.ChildInfo> => {
  const out: Array<Dispatcher.ChildInfo> = []
  for (const entry of core.registry.values()) {
    // a key whose successor waits out a restart delay has no child now
    if (entry.fiber === undefined || entry.phase === Restarting) continue
    out.push({
      key: entry.key,
      mailboxSize: entry.mailbox.messages.length + (entry.extra?.next?.messages.length ?? 0),
      incarnation: entry.incarnation
    })
  }
  return out
}
