/**
 * The engine timings of the sharded example, its benchmark and its tests:
 * short enough for a run of a minute, long enough to hold on a loaded 2-core
 * machine (a lock refreshed every 2 s, expiring after 9 s). Failover after a
 * runner's SIGKILL is bounded by the expiry; production keeps the engine's
 * defaults (35 s) or picks its own.
 *
 * - `shardLockRefreshInterval: 2 s`, `shardLockExpiration: 9 s`: a refresh
 *   may take several seconds on a saturated machine before anything is lost
 *   (a 1 s refresh timed out under load, and its runner gave up every shard).
 * - `shardsPerGroup: 60`: fewer locks to take at start than the default 300.
 * - `refreshAssignmentsInterval: 500 ms`: runners see each other quickly.
 * - `entityMessagePollInterval: 500 ms`, `entityReplyPollInterval: 50 ms`:
 *   persisted requests and replies are found quickly.
 * - `sendRetryInterval: 50 ms`: a call for a shard not yet assigned retries soon.
 * - `runnerHealthCheckInterval: 5 s`: a dead runner is found by its missed pings
 *   sooner than by its lock's expiry.
 */
import type { ShardingConfig } from "effect/cluster/ShardingConfig"

export const timings: Partial<ShardingConfig["Service"]> = {
  shardsPerGroup: 60,
  shardLockRefreshInterval: "2 seconds",
  shardLockExpiration: "9 seconds",
  refreshAssignmentsInterval: "500 millis",
  entityMessagePollInterval: "500 millis",
  entityReplyPollInterval: "50 millis",
  sendRetryInterval: "50 millis",
  entityTerminationTimeout: "5 seconds",
  runnerHealthCheckInterval: "5 seconds"
}
