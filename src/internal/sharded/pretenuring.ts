/**
 * Keeps V8 from pretenuring Effect's scope state.
 *
 * A scope's first finalizer gives it its "open" state, an object literal in
 * Effect's `Scope` machinery. V8 decides once per literal whether to allocate
 * it straight into the old generation, from how many of the objects it
 * tracked survived a minor GC (85% or more: always old; fewer: never), and
 * the decision never changes. A runner's start-up and its first requests
 * give that literal mostly long-lived scopes (layers, then one entity per new
 * key), so V8 may decide "always old". From then on the engine's per-request
 * scope (the RPC server's, which the entity manager gives a finalizer) is
 * born old, and keeps the request's whole object graph alive through every
 * minor GC until the next major one: measured, about 6 MB promoted per
 * minor GC and 20-30% more CPU per call on that runner.
 *
 * Opening and dropping a few thousand scopes, first in `layerPostgres` (while
 * Effect's scope code is still cold) and again before a runner serves, hands
 * V8 a sample that mostly died, so it decides "never old", as it would for a
 * program whose scopes live as long as its requests. In a fresh process that
 * is what happens; in a runner V8's tally does not show the sample, so there
 * it may work by getting Effect's scope code compiled before the entities
 * arrive. It is kept for what was measured: no leaking runner in 7 of 7
 * bench runs, against 10 of 13 before (README, "Scale out"). It costs 9 ms
 * the first time in a process, 1 ms after. `test/pretenuring.test.ts` pins
 * both halves in fresh processes: that V8 still pretenures that literal after
 * a start of long-lived scopes, and that this keeps it young; when Effect
 * stops allocating the state as a literal, the first fails and this module
 * can go.
 *
 * Public Effect API only: `Scope.makeUnsafe` and `Scope.forkUnsafe` (which
 * gives the parent its first finalizer, the child's close).
 */
import { Scope } from "effect"

/** How many short-lived scopes outweigh what a start-up keeps (V8 needs at least 100 in a minor GC's sample). */
const samples = 4000

/**
 * Open and drop `samples` scopes, each with one finalizer. `layerPostgres`
 * and each runner registration call it: a later call changes nothing and
 * costs about a millisecond.
 *
 * @internal
 */
export const settleScopePretenuring = (): void => {
  for (let i = 0; i < samples; i++) Scope.forkUnsafe(Scope.makeUnsafe())
}
