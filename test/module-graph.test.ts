/**
 * The shape of `src`: no runtime import cycle between its modules (a cycle
 * makes the order modules are evaluated in matter, and breaks bundlers).
 * Type-only imports are erased, so they do not count.
 */
import { assert, describe, it } from "@effect/vitest"
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join, normalize, relative } from "node:path"

const src = new URL("../src", import.meta.url).pathname

const modules = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? modules(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []
  )

const importPattern =
  /^(?:import|export)\s+(type\s+)?(\{[^}]*\}|\*\s+as\s+\w+|\w+(?:\s*,\s*\{[^}]*\})?)\s+from\s+"(\.[^"]+)"/gm

/** The modules `file` imports at run time. */
const runtimeImports = (file: string): Array<string> => {
  const out: Array<string> = []
  for (const [, typeOnly, what, from] of readFileSync(file, "utf8").matchAll(importPattern)) {
    if (typeOnly !== undefined) continue
    const names = what!.startsWith("{") ? what!.slice(1, -1).split(",").map((n) => n.trim()).filter(Boolean) : []
    if (names.length > 0 && names.every((n) => n.startsWith("type "))) continue
    out.push(normalize(join(dirname(file), from!.replace(/\.js$/, ".ts"))))
  }
  return out
}

describe("the module graph of src", () => {
  it("has no runtime import cycle", () => {
    const graph = new Map(modules(src).map((file) => [file, runtimeImports(file)]))
    const cycles: Array<string> = []
    const state = new Map<string, "visiting" | "done">()
    const visit = (file: string, path: Array<string>) => {
      if (state.get(file) === "done") return
      if (state.get(file) === "visiting") {
        cycles.push([...path.slice(path.indexOf(file)), file].map((f) => relative(src, f)).join(" -> "))
        return
      }
      state.set(file, "visiting")
      for (const next of graph.get(file) ?? []) visit(next, [...path, file])
      state.set(file, "done")
    }
    for (const file of graph.keys()) visit(file, [])
    assert.deepStrictEqual(cycles, [])
    assert.isAbove(graph.size, 10, "the modules were found")
  })
})
