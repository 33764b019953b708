// Prints, as one JSON line, the URL of every module a fresh Node process loads
// while it imports the module given as argument (a module resolve hook, Node
// >= 22.15; run with `--import tsx` to load TypeScript sources).
import { registerHooks } from "node:module"
import { pathToFileURL } from "node:url"

const loaded = new Set()
registerHooks({
  resolve(specifier, context, nextResolve) {
    const resolved = nextResolve(specifier, context)
    loaded.add(resolved.url)
    return resolved
  }
})
await import(pathToFileURL(process.argv[2]).href)
console.log(JSON.stringify([...loaded]))
