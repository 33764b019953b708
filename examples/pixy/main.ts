/**
 * A Kafka-Pixy-style HTTP message proxy on the dispatcher: produce to an
 * in-memory log, long-poll consume through the consumer tree (one dispatcher
 * per group, one per topic under it, one topic consumer per group+topic), ack,
 * and look at the tree on `/_stats`. Settings come from `PIXY_*` environment
 * variables (see Config.ts). SIGINT/SIGTERM stop it gracefully: long polls in
 * flight are answered 503, then the server closes and the process exits 0.
 *
 * Run: npm start
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Exit, Layer, Runtime } from "effect"
import { PixyConfig } from "./Config.js"
import { ProxyLive } from "./Proxy.js"

const main = Layer.launch(ProxyLive.pipe(Layer.provide(PixyConfig.layer)))

NodeRuntime.runMain(main, {
  // a stop by signal is the normal end of a server: exit 0, not 130
  teardown: (exit, onExit) =>
    Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? onExit(0) : Runtime.defaultTeardown(exit, onExit)
})
