/**
 * Run by `test/pretenuring.test.ts` in a process of its own, with the node
 * flags that test passes (natives syntax, `gc`, and the young generation at
 * its full size from the start, as on a busy runner, where V8 makes its
 * pretenuring decisions); argument `plain` or `settled`. It plays a runner's
 * start: bursts of long-lived scopes, each given a finalizer, a minor GC
 * after each; `settled` first calls `settleScopePretenuring`, as
 * `Sharded.layerPostgres` and `Sharded.runner` do. Then it prints whether a
 * new scope's state (what the engine's per-request scope gets) is born in
 * the young generation.
 */
import { Scope } from "effect"
import { settleScopePretenuring } from "../../src/internal/sharded/pretenuring.js"

const mode = process.argv[2]
if (mode !== "plain" && mode !== "settled") throw new Error(`mode must be plain or settled, got ${String(mode)}`)

// natives syntax parses only in code compiled at run time (tsx would refuse it)
const inYoungGeneration = new Function("o", "return %InYoungGeneration(o)") as (o: unknown) => boolean
const minorGc = () => (globalThis as unknown as { gc: (o: { type: string }) => void }).gc({ type: "minor" })

/** A scope's state: Effect keeps it on the scope (not public: this probe is an upgrade canary). */
const stateOf = (scope: Scope.Scope): unknown => (scope as unknown as { state: unknown }).state

if (mode === "settled") {
  settleScopePretenuring()
  minorGc()
}
const kept: Array<Scope.Scope> = []
for (let burst = 0; burst < 8; burst++) {
  for (let i = 0; i < 2000; i++) {
    const scope = Scope.makeUnsafe()
    Scope.forkUnsafe(scope)
    kept.push(scope)
  }
  minorGc()
}
const probe = Scope.makeUnsafe()
Scope.forkUnsafe(probe)
process.stdout.write(JSON.stringify({ mode, kept: kept.length, young: inYoungGeneration(stateOf(probe)) }) + "\n")
