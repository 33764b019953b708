/**
 * What the sharded tests run: one entity definition shared by the test
 * process (the caller) and the runner processes, a factory whose children
 * behave as each request asks, and the engine timings tests use.
 */
import { Effect, Option, Schedule, Schema } from "effect"
import type { ShardingConfig } from "effect/cluster/ShardingConfig"
import { Dispatcher, Sharded } from "../../src/index.js"

export class Job extends Schema.Class<Job>("Job")({
  key: Schema.String,
  /**
   * - echo: answer at once
   * - sleep: answer after `ms`
   * - fail: fail with the user's error
   * - die: the handler dies (a defect answers this request; the child goes on)
   * - badAnswer: answer something that does not fit the success Schema
   */
  op: Schema.Literals(["echo", "sleep", "fail", "die", "badAnswer"]),
  ms: Schema.optional(Schema.Number)
}) {}

export class JobFailed extends Schema.TaggedError<JobFailed>()("JobFailed", {
  key: Schema.String,
  reason: Schema.String
}) {}

export const Answer = Schema.Struct({
  key: Schema.String,
  /** the runner that served it */
  runner: Schema.String,
  /** requests this child served before this one */
  served: Schema.Number,
  /** `Sharded.requestId` of the request, as the handler saw it */
  requestId: Schema.optional(Schema.String)
})
export type Answer = typeof Answer.Type

/** Volatile. */
export const Jobs = Sharded.entity("Jobs", {
  request: Job,
  success: Answer,
  error: JobFailed,
  keyOf: (job) => job.key
})

/** Persisted: the same, through the engine's message storage. */
export const StoredJobs = Sharded.entity("StoredJobs", {
  request: Job,
  success: Answer,
  error: JobFailed,
  keyOf: (job) => job.key,
  persisted: true
})

/**
 * The children: keys starting with `poison` die as they start (so the restart
 * policy runs out and waiting requests get `ChildFailed`); the others serve
 * each request as its `op` says.
 */
export const factory = (runner: string): Dispatcher.Factory<Job, Answer, JobFailed> => ({
  keyOf: (job) => job.key,
  spawn: (child) => {
    if (child.key.startsWith("poison")) return Effect.die(new Error(`poisoned key ${child.key}`))
    let served = 0
    return Dispatcher.serve(child, (job) => {
      const answer = (): Answer => ({
        key: job.key,
        runner,
        served: served++,
        requestId: Option.getOrUndefined(Sharded.requestId(job))
      })
      switch (job.op) {
        case "echo":
          return Effect.sync(answer)
        case "sleep":
          return Effect.as(Effect.sleep(job.ms ?? 1000), undefined).pipe(Effect.map(answer))
        case "fail":
          return Effect.fail(new JobFailed({ key: job.key, reason: "asked to fail" }))
        case "die":
          return Effect.die(new Error(`handler died for ${job.key}`))
        case "badAnswer":
          return Effect.sync(() => ({ ...answer(), served: "not a number" } as unknown as Answer))
      }
    })
  }
})

/** The runners' options in tests: a small mailbox, a short restart policy. */
export const runnerOptions: Sharded.RunnerOptions = {
  mailboxCapacity: 4,
  restart: Schedule.spaced("20 millis").pipe(Schedule.upTo({ times: 2 }))
}

/**
 * Engine timings for tests: every process of a test's cluster uses these.
 * Short enough for tests to start in seconds, long enough to hold on a loaded
 * 2-core machine (the issue measured a 1 s lock refresh timing out under load,
 * after which the runner gave up all its shards): the lock is refreshed every
 * 2 s (a third of the expiry, as the engine does) with 9 s before it expires,
 * so a refresh may take several seconds before anything is lost.
 *
 * - `shardsPerGroup: 60`: fewer locks to take at start than the default 300.
 * - `refreshAssignmentsInterval: 500 ms`: runners see each other quickly.
 * - `entityMessagePollInterval: 500 ms`, `entityReplyPollInterval: 50 ms`:
 *   persisted requests and replies are found quickly.
 * - `sendRetryInterval: 50 ms`: a call for a shard not yet assigned retries soon.
 */
export const timings: Partial<ShardingConfig["Service"]> = {
  shardsPerGroup: 60,
  shardLockRefreshInterval: "2 seconds",
  shardLockExpiration: "9 seconds",
  refreshAssignmentsInterval: "500 millis",
  entityMessagePollInterval: "500 millis",
  entityReplyPollInterval: "50 millis",
  sendRetryInterval: "50 millis",
  entityTerminationTimeout: "5 seconds",
  entityRegistrationTimeout: "10 seconds",
  runnerHealthCheckInterval: "5 seconds"
}
