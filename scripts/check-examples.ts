/**
 * Type-checks every `ts` example in the public modules' JSDoc, so none rots:
 * each example becomes a module of its own, compiled with the project's
 * options and `effect-dispatcher` mapped to the sources. Run by `npm run typecheck`.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import ts from "typescript"

const root = resolve(import.meta.dirname, "..")
const modules = ["src/index.ts", "src/Dispatcher.ts", "src/DispatchError.ts", "src/Sharded.ts"]
// inside the project, so the examples are ES modules resolving its node_modules
const dir = join(root, "node_modules", ".cache", "jsdoc-examples")
rmSync(dir, { recursive: true, force: true })
mkdirSync(dir, { recursive: true })
const files: Array<string> = []
const origin = new Map<string, string>()

for (const module of modules) {
  const text = readFileSync(join(root, module), "utf8")
  for (const match of text.matchAll(/```ts\n([\s\S]*?)```/g)) {
    const code = match[1]!.split("\n").map((line) => line.replace(/^\s*\* ?/, "")).join("\n")
    const file = join(dir, `example${files.length}.ts`)
    const line = text.slice(0, match.index).split("\n").length
    writeFileSync(file, `${code}\nexport {}\n`)
    files.push(file)
    origin.set(file, `${module}:${line}`)
  }
}

const base = ts.getParsedCommandLineOfConfigFile(join(root, "tsconfig.json"), {}, {
  ...ts.sys,
  onUnRecoverableConfigFileDiagnostic: () => {}
})!
const program = ts.createProgram(files, {
  ...base.options,
  noEmit: true,
  noUnusedLocals: false,
  baseUrl: root,
  paths: { "effect-dispatcher": [join(root, "src/index.ts")] }
})
const problems = ts.getPreEmitDiagnostics(program).filter((d) => d.file && files.includes(d.file.fileName))
for (const d of problems) {
  const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0)
  console.error(`${origin.get(d.file!.fileName)} (example line ${line + 1}): ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`)
}
rmSync(dir, { recursive: true, force: true })
console.log(`${files.length} JSDoc examples type-checked, ${problems.length} problems`)
process.exit(problems.length === 0 ? 0 : 1)
