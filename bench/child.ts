/**
 * How the bench scripts talk to the processes they start: a measuring process
 * prints one line `RESULT <json>` and exits 0 (1 on error); its parent starts
 * it as `node --expose-gc --import tsx <script> ...` and reads that line back.
 */

const prefix = "RESULT "

/** The arguments for `process.execPath` to run a bench script in a fresh process. */
export const nodeArgs = (script: string, args: ReadonlyArray<string>, quick: boolean): Array<string> => [
  "--expose-gc",
  "--import",
  "tsx",
  script,
  ...args,
  ...(quick ? ["--quick"] : [])
]

/** In the measuring process: the one line its parent reads. */
export const printResult = (result: unknown): void => {
  process.stdout.write(`${prefix}${JSON.stringify(result)}\n`)
}

/** In the parent: the result in a child's output, if it printed one. */
export const resultIn = <A>(stdout: string): A | undefined => {
  const line = stdout.split("\n").find((l) => l.startsWith(prefix))
  return line === undefined ? undefined : (JSON.parse(line.slice(prefix.length)) as A)
}

/** Exit 0 once `done` settles, or print the error and exit 1 (open handles must not keep a script alive). */
export const exitWhenDone = (done: Promise<unknown>): void => {
  done.then(
    () => process.exit(0),
    (error) => {
      console.error(error)
      process.exit(1)
    }
  )
}
