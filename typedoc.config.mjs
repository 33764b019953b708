// @ts-check
/**
 * `npm run docs`: the API reference, from the JSDoc of every module the package exports (its
 * entry points are read from package.json `exports`, so a new subpath is documented by adding it
 * there). Written to docs/ (not committed). Any warning fails the build: an export without a doc
 * comment, a broken `{@link}`, a type a public signature uses but the package does not export;
 * scripts/typedoc-require-tags.mjs also fails an export without `@since`, `@category` or an
 * `@example`, and `npm run docs` then type-checks every example (scripts/check-examples.ts).
 */
import { readFileSync } from "node:fs"

const manifest = JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8"))

/** @type {Array<string>} */
const entryPoints = Object.values(manifest.exports).map((target) =>
  target.default.replace(/^\.\/dist\/(.*)\.js$/, "./src/$1.ts")
)

/** @type {Partial<import("typedoc").TypeDocOptions>} */
export default {
  name: manifest.name,
  entryPoints,
  out: "docs",
  tsconfig: "tsconfig.build.json",
  readme: "none",
  includeVersion: true,
  // no source links: the reference is built from any checkout, with or without a remote
  disableSources: true,
  excludeInternal: true,
  plugin: ["./scripts/typedoc-require-tags.mjs"],
  validation: { notExported: true, invalidLink: true, notDocumented: true },
  // every export needs a doc comment (an interface's properties may rely on the interface's)
  requiredToBeDocumented: ["Variable", "Function", "Class", "Interface", "TypeAlias", "Namespace", "Enum"],
  treatWarningsAsErrors: true
}
