/**
 * The one adapter interface every peer implements, so that the workloads
 * (bench/workloads.ts) drive each of them with the same code.
 *
 * A peer comes in one of two flavours: an Effect peer, whose callers are
 * fibers inside one Effect program, and a Promise peer (plain JS), whose
 * callers are async functions. The two drivers are line-for-line the same
 * loop; only `yield*` becomes `await`.
 */
import type { Effect, Scope } from "effect"

/** The answer a `tryCall` gives when the mailbox was full (the request was shed). */
export const REJECTED = -1

/** What a child does with the requests it takes. */
export type ChildKind =
  /** answer every request with its `n`, at once, and wait for the next (W1, W4, W5, W6) */
  | "echo"
  /** answer the one request it takes, then end: spawn + dispose per call (W2) */
  | "once"
  /** take requests and never answer them: a mailbox that stays full (W6's rejection cost) */
  | "stuck"

/**
 * What an `echo` child's handler is. W1 measures all three: `succeed` is the
 * fast path (nothing to run, so this project answers inside the sender's call);
 * a real handler runs code (`sync`) and often waits for something (`async`).
 */
export type Handler =
  /** `Effect.succeed(n)` (plain JS: the value itself): done at once, nothing to run */
  | "succeed"
  /** `Effect.sync(() => n)` (plain JS: a function call): synchronous code, as most handlers start */
  | "sync"
  /** `Effect.promise(() => Promise.resolve(n))` (plain JS: `await`): one real asynchronous hop, a microtask */
  | "async"

export interface MakeOptions {
  readonly capacity: number
  readonly child: ChildKind
  /** the `echo` child's handler; `succeed` when left out */
  readonly handler?: Handler
}

export interface EffectService {
  /** A round trip; the answer is the request's `n`. */
  readonly call: (key: string, n: number) => Effect.Effect<number, unknown>
  /** A round trip that answers `REJECTED` when the key's mailbox is full. */
  readonly tryCall: (key: string, n: number) => Effect.Effect<number, unknown>
}

export interface EffectTree {
  /** root by group, then a dispatcher by topic, then the leaf: answers `n` */
  readonly call: (group: string, topic: string, n: number) => Effect.Effect<number, unknown>
}

/** What the report says of a peer, whichever its kind. */
export interface PeerInfo {
  /** Workloads the peer cannot do meaningfully, and why (a footnote in the table). */
  readonly unsupported?: Partial<Record<string, string>>
  /** How this peer's stop works, for the W5 footnote. */
  readonly stopKind: string
  /** W4/W5 with fewer idle children than the others (a footnote says so) */
  readonly idleChildren?: number
  /** What a reader must know about how the peer does a workload (a footnote) */
  readonly notes?: Partial<Record<string, string>>
}

export interface EffectPeer extends PeerInfo {
  readonly kind: "effect"
  /** A keyed service in the Scope; closing the Scope stops it (as gracefully as the peer can). */
  readonly make: (options: MakeOptions) => Effect.Effect<EffectService, never, Scope.Scope>
  /** W3; undefined when the peer cannot do it meaningfully (see `notes`). */
  readonly makeTree?: (options: { readonly capacity: number }) => Effect.Effect<EffectTree, never, Scope.Scope>
}

export interface PromiseService {
  readonly call: (key: string, n: number) => Promise<number>
  readonly tryCall: (key: string, n: number) => Promise<number>
  /** Stop gracefully: end every mailbox, let children drain, wait for them. */
  readonly stop: () => Promise<void>
}

export interface PromiseTree {
  readonly call: (group: string, topic: string, n: number) => Promise<number>
  readonly stop: () => Promise<void>
}

export interface PromisePeer extends PeerInfo {
  readonly kind: "promise"
  readonly make: (options: MakeOptions) => PromiseService
  readonly makeTree?: (options: { readonly capacity: number }) => PromiseTree
}

export type Peer = EffectPeer | PromisePeer

export const peerNames = ["effect-dispatcher", "effect-floor", "plain", "effect-diy", "effect-cluster"] as const
export type PeerName = (typeof peerNames)[number]

export const workloadNames = [
  "w1-k1",
  "w1-k1000",
  "w1-k100000",
  "w1-k1-sync",
  "w1-k1000-sync",
  "w1-k1-async",
  "w1-k1000-async",
  "w2",
  "w3",
  "w4",
  "w5",
  "w6"
] as const
export type WorkloadName = (typeof workloadNames)[number]

/** A W1 workload's keys and handler (`w1-k1000-async`: 1,000 keys, an `async` handler); undefined for the others. */
export const w1Of = (workload: WorkloadName): { readonly keys: number; readonly handler: Handler } | undefined => {
  const match = /^w1-k(\d+)(?:-(sync|async))?$/.exec(workload)
  return match === null ? undefined : { keys: Number(match[1]), handler: (match[2] as Handler | undefined) ?? "succeed" }
}

/** What a workload measured, before the worker adds the peer's name. */
export interface Measured {
  /** the main figure (calls/s, keys/s, bytes per child, millis, ...) */
  readonly value: number
  readonly unit: string
  /** secondary figures by name (rss per child, rejected/s, ...) */
  readonly extra: Record<string, number>
  /** calls made in the timed phase, and in the warm-up */
  readonly timedCalls: number
  readonly warmupCalls: number
  readonly warmupMillis: number
  /** answers that were not the expected value: must be 0 */
  readonly wrong: number
}

/** One measurement: what bench/worker.ts prints as a JSON line. */
export interface Result extends Measured {
  readonly peer: PeerName
  readonly workload: WorkloadName
  readonly node: string
  readonly loadMillis: number
  readonly processMillis: number
  /** CPU time of the whole worker process (all threads) */
  readonly processCpuMillis: number
  /** set by the driver: cores kept busy by other processes while the worker ran (Linux) */
  otherCores?: number
  /** set by the driver: how long it waited for a free core before starting the worker */
  waitedMillis?: number
  /** set by the driver: a hash of src/ as the worker started (another engineer may be changing it) */
  source?: string
}
