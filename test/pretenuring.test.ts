/**
 * Upgrade canary for `src/internal/sharded/pretenuring.ts`: V8 may decide to
 * allocate Effect's scope state (a scope's first finalizer) straight into the
 * old generation after a start-up of long-lived scopes, and
 * `settleScopePretenuring`, as `Sharded.layerPostgres` and `Sharded.runner`
 * call it, keeps it young. Each half runs in a process of its own
 * (`support/pretenuring-probe.ts`): V8's decision is made once per process.
 * When Effect stops allocating that state as an object literal, "V8 still
 * pretenures it" fails, and the module can go.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"

const probe = fileURLToPath(new URL("./support/pretenuring-probe.ts", import.meta.url))

/** Whether a new scope's state is born young after the probe's start-up, in `mode`. */
const bornYoung = (mode: "plain" | "settled"): boolean => {
  // killed under the test's own timeout: a stuck probe fails the test and is not left behind
  const out = execFileSync(process.execPath, [
    "--allow-natives-syntax",
    "--expose-gc",
    // the young generation at full size from the start, as on a busy runner: where V8 decides
    "--min-semi-space-size=16",
    "--max-semi-space-size=16",
    "--import",
    "tsx",
    probe,
    mode
  ], { encoding: "utf8", timeout: 15_000 })
  const result = JSON.parse(out.trim().split("\n").at(-1)!) as { mode: string; kept: number; young: boolean }
  assert.strictEqual(result.mode, mode)
  assert.strictEqual(result.kept, 16_000, "the probe kept its long-lived scopes")
  return result.young
}

describe("Effect's scope state and V8's pretenuring (pretenuring.ts)", () => {
  it("V8 still pretenures Effect's scope state after a start-up of long-lived scopes (if not, pretenuring.ts can go)", () => {
    assert.isFalse(
      bornYoung("plain"),
      "a scope's first finalizer no longer gets a pretenured state: Effect changed how it allocates it; remove settleScopePretenuring"
    )
  })

  it("settleScopePretenuring, called before that start-up, keeps the scope state young", () => {
    assert.isTrue(bornYoung("settled"))
  })
})
