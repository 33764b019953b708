/**
 * What a dispatcher reports of itself: stats, live children, the whole tree.
 */
import type * as Dispatcher from "../Dispatcher.js"
import type { Core } from "./core.js"
import { type Entry, Restarting } from "./entry.js"

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
export const tree = (core: Core): Dispatcher.Tree => ({
  name: core.options.name,
  path: core.path,
  stats: stats(core),
  children: childrenOf(core, (entry, info) => {
    const downstream = entry.extra?.downstream
    return downstream === undefined ? info : { ...info, downstream: tree(downstream) }
  })
})

/** @internal */
export const children = (core: Core): ReadonlyArray<Dispatcher.ChildInfo> => childrenOf(core, (_, info) => info)

/** The live children, in registry order, each as `describe` says. */
const childrenOf = <A>(core: Core, describe: (entry: Entry, info: Dispatcher.ChildInfo) => A): Array<A> => {
  const out: Array<A> = []
  for (const entry of core.registry.values()) {
    // a key whose successor waits out a restart delay has no child now
    if (entry.fiber === undefined || entry.phase === Restarting) continue
    out.push(describe(entry, {
      key: entry.key,
      // a revived key's requests for its next child count too
      mailboxSize: entry.mailbox.messages.length + (entry.extra?.next?.messages.length ?? 0),
      incarnation: entry.incarnation
    }))
  }
  return out
}
