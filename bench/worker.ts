/**
 * Runs ONE (peer, workload) measurement in this process, warm-up included,
 * and prints one JSON line (prefixed `RESULT `) for bench/run.ts.
 *
 *   node --expose-gc --import tsx bench/worker.ts <peer> <workload> [--quick]
 */
import { Effect } from "effect"
import { exitWhenDone, printResult } from "./child.js"
import { loadPeer } from "./peers/index.js"
import type { Measured, PeerName, Result, WorkloadName } from "./types.js"
import { peerNames, workloadNames } from "./types.js"
import { paramsFor, runEffect, runPromise } from "./workloads.js"

const main = async () => {
  const [peerName, workload] = process.argv.slice(2) as [PeerName, WorkloadName]
  const quick = process.argv.includes("--quick")
  if (!peerNames.includes(peerName) || !workloadNames.includes(workload)) {
    throw new Error(`usage: worker.ts <${peerNames.join("|")}> <${workloadNames.join("|")}> [--quick]`)
  }
  const peer = await loadPeer(peerName)
  const loadedAt = performance.now()
  const params = paramsFor(quick, peer)
  const measured: Measured = peer.kind === "effect"
    ? await Effect.runPromise(runEffect(peer, workload, params) as Effect.Effect<Measured>)
    : await runPromise(peer, workload, params)
  const result: Result = {
    peer: peerName,
    workload,
    node: process.version,
    ...measured,
    // since the process started: loading (Node, tsx, effect, the peer) and all of it
    loadMillis: loadedAt,
    processMillis: performance.now(),
    processCpuMillis: (process.cpuUsage().user + process.cpuUsage().system) / 1_000
  }
  printResult(result)
}

exitWhenDone(main())
