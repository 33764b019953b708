/**
 * The package as a stranger gets it: `npm pack` (which builds dist/ through the
 * `prepare` script), then, in a fresh temporary project with only the tarball
 * and its peer `effect` installed:
 *
 * 1. the tarball holds dist/ (ESM .js, .d.ts, declaration and source maps) for
 *    every subpath, the sources the maps point to, and nothing else;
 * 2. a consumer program (a Layer, calls, a shutdown) type-checks with `tsc`
 *    under `moduleResolution` `nodenext` (then is emitted and run with plain
 *    `node`, which must print the known answer) and under `bundler`; every
 *    subpath is imported both ways too;
 * 3. all of this once with the lowest `effect` the peer range allows and once
 *    with the newest it allows;
 * 4. the program runs on the Node that runs this script (the pinned one under
 *    `npm run`), on the first other `node` on PATH (the machine's), and on
 *    each Node version given with `--nodes 18,22` (fetched with `npx node@V`);
 * 5. publint (strict) and `attw` (ESM-only profile) on the same tarball.
 *
 * The temporary directory is removed whether it passes or fails.
 * Run with `npm run test:package [-- --nodes 18,22]`.
 */
import { execFileSync, type ExecFileSyncOptions } from "node:child_process"
import { accessSync, constants, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { delimiter, join, resolve } from "node:path"

/** Every entry point of the package (`exports` must list exactly these). Add new modules here. */
const subpaths = [".", "./Dispatcher", "./DispatchError", "./Sharded", "./Inspector"]

/** What the consumer program must print, on every Node and every `effect`. */
const expected = "ada=15 bob=7 spawned=2 live=0 after shutdown: Unavailable"

const root = resolve(import.meta.dirname, "..")
const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"))
const bin = (name: string) => join(root, "node_modules", ".bin", name)
const tsc = join(root, "node_modules", "typescript", "bin", "tsc")

const args = process.argv.slice(2)
const nodesFlag = args.indexOf("--nodes")
const extraNodes = nodesFlag >= 0 ? (args[nodesFlag + 1] ?? "").split(",").filter((v) => v !== "") : []

const run = (file: string, argv: ReadonlyArray<string>, options: ExecFileSyncOptions = {}): string => {
  try {
    return execFileSync(file, argv, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], ...options }).toString()
  } catch (error) {
    const e = error as { stdout?: unknown; stderr?: unknown; message: string }
    throw new Error(`${[file, ...argv].join(" ")} failed\n${String(e.stdout ?? "")}${String(e.stderr ?? "")}`, {
      cause: error
    })
  }
}

const step = (label: string) => console.log(`\n== ${label}`)
const check = (ok: boolean, message: string) => {
  if (!ok) throw new Error(message)
}

const distName = (subpath: string) => (subpath === "." ? "index" : subpath.slice(2))
const specifier = (subpath: string) => (subpath === "." ? manifest.name : `${manifest.name}/${subpath.slice(2)}`)

/** The lowest version a `^x.y.z` range allows. */
const lowest = (range: string): string => {
  const match = /^\^(\d+\.\d+\.\d+)$/.exec(range)
  if (match === null) throw new Error(`peerDependencies.effect: expected a ^x.y.z range, got ${range}`)
  return match[1]!
}

/** The first `node` on PATH outside this project (the machine's own), unless it is the one running this. */
const machineNode = (): string | undefined => {
  const self = realpathSync(process.execPath)
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "" || resolve(dir).startsWith(join(root, "node_modules"))) continue
    const candidate = join(dir, "node")
    try {
      accessSync(candidate, constants.X_OK)
    } catch {
      continue
    }
    return realpathSync(candidate) === self ? undefined : candidate
  }
  return undefined
}

const consumer = `import { Console, Context, Effect } from "effect"
import { Dispatcher } from "effect-dispatcher"
import * as D from "effect-dispatcher/Dispatcher"
import { Unavailable } from "effect-dispatcher/DispatchError"

interface Deposit {
  readonly user: string
  readonly amount: number
}

class Ledger extends Context.Service<Ledger, Dispatcher.Dispatcher<Deposit, number>>()("consumer/Ledger") {}

const LedgerLive = Dispatcher.layer(Ledger, {
  keyOf: (deposit) => deposit.user,
  spawn: (child) => {
    let balance = 0
    return Dispatcher.serve(child, (deposit) => Effect.sync(() => (balance += deposit.amount)))
  }
}, { mailboxCapacity: 8, name: "ledger" })

const program = Effect.gen(function*() {
  const ledger = yield* Ledger
  yield* Dispatcher.call(ledger, { user: "ada", amount: 10 })
  const ada: number = yield* Dispatcher.call(ledger, { user: "ada", amount: 5 })
  const bob: number = yield* D.call(ledger, { user: "bob", amount: 7 })
  yield* D.shutdown(ledger)
  const stats: D.Stats = yield* D.stats(ledger)
  const late = yield* Effect.flip(Dispatcher.call(ledger, { user: "ada", amount: 1 }))
  const after = late instanceof Unavailable ? late._tag : "something else: " + String(late)
  yield* Console.log(\`ada=\${ada} bob=\${bob} spawned=\${stats.spawned} live=\${stats.live} after shutdown: \${after}\`)
})

Effect.runPromise(program.pipe(Effect.provide(LedgerLive)))
`

const subpathsModule = `${
  subpaths.map((subpath, i) => `import * as m${i} from "${specifier(subpath)}"`).join("\n")
}

const modules: Record<string, object> = {
${subpaths.map((subpath, i) => `  "${specifier(subpath)}": m${i}`).join(",\n")}
}
for (const [name, module] of Object.entries(modules)) {
  if (Object.keys(module).length === 0) throw new Error(name + " exports nothing")
}
`

const tsconfig = (compilerOptions: object) =>
  JSON.stringify(
    {
      compilerOptions: {
        target: "ES2022",
        lib: ["ES2022", "DOM"], // effect's declarations name web globals (AbortSignal, URL); a Node project has them from @types/node
        types: [],
        strict: true,
        exactOptionalPropertyTypes: true,
        skipLibCheck: false,
        ...compilerOptions
      },
      files: ["main.ts", "subpaths.ts"]
    },
    null,
    2
  )

const dir = mkdtempSync(join(tmpdir(), "effect-dispatcher-package-"))
const cleanUp = () => rmSync(dir, { recursive: true, force: true })
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    cleanUp()
    process.exit(130)
  })
}

try {
  step("npm pack (prepare builds dist/)")
  const packed = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", dir], { cwd: root }))[0]
  const tarball = join(dir, packed.filename)
  const files: Array<string> = packed.files.map((f: { path: string }) => f.path)
  console.log(`${packed.filename}: ${files.length} files, ${packed.size} bytes`)

  step("the tarball's contents")
  check(
    JSON.stringify(Object.keys(manifest.exports).sort()) === JSON.stringify([...subpaths].sort()),
    `package.json exports ${Object.keys(manifest.exports).join(", ")}; expected exactly ${subpaths.join(", ")}`
  )
  for (const subpath of subpaths) {
    const name = distName(subpath)
    for (const ext of [".js", ".js.map", ".d.ts", ".d.ts.map"]) {
      check(files.includes(`dist/${name}${ext}`), `the tarball lacks dist/${name}${ext} (for "${subpath}")`)
    }
    check(files.includes(`src/${name}.ts`), `the tarball lacks src/${name}.ts, which the maps point to`)
  }
  const shipped = /^(package\.json|README\.md|CHANGELOG\.md|LICENSE(\.md)?|dist\/.*\.(js|d\.ts)(\.map)?|src\/.*\.ts)$/
  const stray = files.filter((file) => !shipped.test(file))
  check(stray.length === 0, `the tarball ships what a user doesn't need: ${stray.join(", ")}`)
  console.log(`dist/ and src/ for ${subpaths.join(", ")}; nothing else but ${files.filter((f) => !/^(dist|src)\//.test(f)).join(", ")}`)

  step("publint --strict")
  console.log(run(bin("publint"), ["run", "--strict", tarball]).trim())
  step("attw --profile esm-only")
  console.log(run(bin("attw"), [tarball, "--profile", "esm-only", "--format", "table-flipped", "--no-emoji"]).trim())

  const project = join(dir, "consumer")
  run("mkdir", ["-p", project])
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify({ name: "consumer", private: true, type: "module" }, null, 2)
  )
  writeFileSync(join(project, "main.ts"), consumer)
  writeFileSync(join(project, "subpaths.ts"), subpathsModule)
  writeFileSync(
    join(project, "tsconfig.nodenext.json"),
    tsconfig({ module: "nodenext", moduleResolution: "nodenext", outDir: "out" })
  )
  writeFileSync(
    join(project, "tsconfig.bundler.json"),
    tsconfig({ module: "preserve", moduleResolution: "bundler", noEmit: true })
  )

  const nodes: Array<{ readonly label: string; readonly argv: (file: string) => [string, Array<string>] }> = [
    { label: process.execPath, argv: (file) => [process.execPath, [file]] }
  ]
  const machine = machineNode()
  if (machine !== undefined) nodes.push({ label: machine, argv: (file) => [machine, [file]] })
  for (const version of extraNodes) {
    nodes.push({ label: `npx node@${version}`, argv: (file) => ["npx", ["-y", `node@${version}`, file]] })
  }

  const peerRange: string = manifest.peerDependencies.effect
  for (const effect of [lowest(peerRange), peerRange]) {
    step(`effect@${effect} beside the tarball`)
    run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", tarball, `effect@${effect}`], {
      cwd: project
    })
    const installed = JSON.parse(readFileSync(join(project, "node_modules", "effect", "package.json"), "utf8"))
    console.log(`installed effect ${installed.version}`)

    run(process.execPath, [tsc, "-p", "tsconfig.nodenext.json"], { cwd: project })
    console.log("tsc, moduleResolution nodenext: no errors")
    run(process.execPath, [tsc, "-p", "tsconfig.bundler.json"], { cwd: project })
    console.log("tsc, moduleResolution bundler: no errors")

    for (const node of nodes) {
      const [file, argv] = node.argv(join(project, "out", "main.js"))
      const version = run(file, [...argv.slice(0, -1), "--version"], { cwd: project }).trim()
      const output = run(file, argv, { cwd: project }).trim()
      check(output === expected, `on Node ${version} with effect ${installed.version}: printed\n${output}\nexpected\n${expected}`)
      const [subFile, subArgv] = node.argv(join(project, "out", "subpaths.js"))
      run(subFile, subArgv, { cwd: project })
      console.log(`node ${version} (${node.label}): ${output}; ${subpaths.length} subpaths import`)
    }
  }

  console.log(`\npackage test passed (engines.node ${manifest.engines.node}, peer effect ${peerRange})`)
} catch (error) {
  console.error(`\npackage test FAILED: ${(error as Error).message}`)
  process.exitCode = 1
} finally {
  cleanUp()
}
