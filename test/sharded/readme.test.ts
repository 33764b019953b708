/**
 * The README's "Scale out" example is `examples/sharded/one-layer.ts`'s
 * region, word for word: the file is type-checked (and runs), so the README's
 * code is too.
 */
import { assert, describe, it } from "@effect/vitest"
import { readFileSync } from "node:fs"

describe("the README's Scale out example", () => {
  it("is the region of examples/sharded/one-layer.ts", () => {
    const source = readFileSync(new URL("../../examples/sharded/one-layer.ts", import.meta.url), "utf8")
    const region = source.split("// #region readme\n")[1]!.split("// #endregion readme")[0]!.trimEnd()
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8")
    const section = readme.slice(readme.indexOf("\n## Scale out\n"), readme.indexOf("\n## Development\n"))
    assert.include(section, "```ts\n" + region + "\n```")
  })
})
