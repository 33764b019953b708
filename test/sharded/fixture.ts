/**
 * What the sharded tests run: one entity definition shared by the test
 * process (the caller) and the runner processes, a factory whose children
 * behave as each request asks, and the engine timings tests use.
 */
import { Effect, Option, Schedule, Schema } from "effect"
import type { ShardingConfig } from "effect/cluster/ShardingConfig"
import { timings as exampleTimings } from "../../examples/sharded/timings.js"
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
 * Engine timings for tests, every process of a test's cluster: the example's
 * (`examples/sharded/timings.ts`, which says why each), and a start that may
 * take 10 s to register an entity on a loaded machine.
 */
export const timings: Partial<ShardingConfig["Service"]> = {
  ...exampleTimings,
  entityRegistrationTimeout: "10 seconds"
}
