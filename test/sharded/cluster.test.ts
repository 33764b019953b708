/**
 * The sharded mode on real processes and real PostgreSQL: two runner
 * processes (`runner-main.ts`) and this test process as a client-only
 * process, on a database of this file's own (see `support/postgres.ts`).
 * Every process started here is killed when the file ends, pass or fail.
 */
import { assert, layer } from "@effect/vitest"
import { Cause, Context, Deferred, Duration, Effect, Exit, Layer, Option, Schedule } from "effect"
import { Dispatcher, Sharded } from "../../src/index.js"
import { type Answer, Job, JobFailed, Jobs, StoredJobs, timings } from "./fixture.js"
import { database, freePort } from "./support/postgres.js"
import { type Proc, script, spawn } from "./support/processes.js"

class Volatile extends Context.Service<
  Volatile,
  Dispatcher.Dispatcher<Job, Answer, JobFailed>
>()("test/sharded/Volatile") {}

class Stored extends Context.Service<
  Stored,
  Dispatcher.Dispatcher<Job, Answer, JobFailed>
>()("test/sharded/Stored") {}

class Runners extends Context.Service<Runners, ReadonlyArray<Proc>>()("test/sharded/Runners") {}

/** Two runner processes on a fresh database, and the handles of this (client-only) process. */
const Cluster = Layer.unwrap(Effect.gen(function*() {
  const db = yield* database
  const runners = yield* Effect.forEach(["r1", "r2"], (name) =>
    Effect.flatMap(freePort, (port) =>
      spawn({
        name,
        script: script("runner-main.ts"),
        env: { DATABASE_URL: db.url, RUNNER_NAME: name, RUNNER_PORT: String(port) }
      })), { concurrency: "unbounded" })
  const cluster = Sharded.layerPostgres({ url: db.url, clientOnly: true, shardingConfig: timings })
  return Layer.mergeAll(
    Sharded.layer(Volatile, Jobs, { unavailableAfter: "5 seconds" }),
    Sharded.layer(Stored, StoredJobs),
    Layer.succeed(Runners, runners)
  ).pipe(Layer.provide(cluster))
}).pipe(Effect.orDie))

const job = (key: string, op: Job["op"] = "echo", ms?: number) => new Job(ms === undefined ? { key, op } : { key, op, ms })

/** Calls until one is answered: the runners may still be taking their shards. */
const warmUp = (d: Dispatcher.Dispatcher<Job, Answer, unknown>, key: string) =>
  Dispatcher.call(d, job(key)).pipe(
    Effect.retry({ times: 120, schedule: Schedule.spaced("250 millis") }),
    Effect.timeout("30 seconds")
  )

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  exit._tag === "Failure" ? Option.getOrUndefined(Cause.findErrorOption(exit.cause)) : undefined

layer(Cluster, { timeout: Duration.minutes(2), excludeTestServices: true })("two runners and a client-only process", (it) => {
  it.effect("calls for many keys are answered, by both runners, each key by one child in order", () =>
    Effect.gen(function*() {
      const jobs = yield* Volatile
      yield* warmUp(jobs, "warm")
      const keys = Array.from({ length: 200 }, (_, i) => `k${i}`)
      const first = yield* Effect.forEach(keys, (key) => Dispatcher.call(jobs, job(key)), { concurrency: 32 })
      const second = yield* Effect.forEach(keys, (key) => Dispatcher.call(jobs, job(key)), { concurrency: 32 })
      assert.deepStrictEqual(first.map((a) => a.key), keys)
      // the same child answered both: its count went on, on the same runner
      for (let i = 0; i < keys.length; i++) {
        assert.strictEqual(second[i]!.served, first[i]!.served + 1, keys[i])
        assert.strictEqual(second[i]!.runner, first[i]!.runner, keys[i])
      }
      const byRunner = new Map<string, number>()
      for (const answer of first) byRunner.set(answer.runner, (byRunner.get(answer.runner) ?? 0) + 1)
      assert.deepStrictEqual([...byRunner.keys()].sort(), ["r1", "r2"], `keys per runner: ${JSON.stringify([...byRunner])}`)
    }), 60_000)

  it.effect("Dispatcher.stats works on the sharded handle: what this process was answered", () =>
    Effect.gen(function*() {
      const jobs = yield* Volatile
      yield* warmUp(jobs, "warm")
      const before = yield* Dispatcher.stats(jobs)
      yield* Effect.forEach(["s1", "s2", "s3"], (key) => Dispatcher.call(jobs, job(key)))
      yield* Effect.exit(Dispatcher.call(jobs, job("s4", "fail")))
      const after = yield* Dispatcher.stats(jobs)
      assert.strictEqual(after.accepted - before.accepted, 4, "answered by a child: 3 values and the user's error")
      assert.strictEqual(after.live, 0, "a client-only process has no children of its own")
      assert.deepStrictEqual(yield* Dispatcher.children(jobs), [])
      assert.strictEqual((yield* Dispatcher.tree(jobs)).name, "Jobs")
    }), 60_000)

  it.effect("a full mailbox on the runner is TooManyRequests at the caller, with the key and capacity", () =>
    Effect.gen(function*() {
      const jobs = yield* Volatile
      yield* warmUp(jobs, "full")
      // one request runs, four wait (mailboxCapacity 4): the mailbox is full
      const busy = [yield* Dispatcher.send(jobs, job("full", "sleep", 3000))]
      yield* Effect.sleep("300 millis")
      for (let i = 0; i < 4; i++) busy.push(yield* Dispatcher.send(jobs, job("full", "sleep", 10)))
      yield* Effect.sleep("500 millis")
      const refused = failureOf(yield* Effect.exit(Dispatcher.call(jobs, job("full"))))
      assert.instanceOf(refused, Dispatcher.TooManyRequests)
      assert.deepStrictEqual([refused.key, refused.capacity], ["full", 4])
      // the waiting ones are untouched: all answered
      const answers = yield* Effect.forEach(busy, (answer) => Deferred.await(answer))
      assert.strictEqual(answers.length, 5)
      assert.isTrue(answers.every((a) => a.key === "full"))
    }), 60_000)

  it.effect("the user's typed error arrives decoded, as its own class", () =>
    Effect.gen(function*() {
      const jobs = yield* Volatile
      yield* warmUp(jobs, "oops")
      const error = failureOf(yield* Effect.exit(Dispatcher.call(jobs, job("oops", "fail"))))
      assert.instanceOf(error, JobFailed)
      assert.deepStrictEqual([error._tag, error.key, error.reason], ["JobFailed", "oops", "asked to fail"])
      // the child went on
      assert.strictEqual((yield* Dispatcher.call(jobs, job("oops"))).key, "oops")
    }), 60_000)

  it.effect("a child that dies past the restart policy is ChildFailed with a readable cause, at once, not replayed", () =>
    Effect.gen(function*() {
      const jobs = yield* Volatile
      yield* warmUp(jobs, "warm")
      const started = Date.now()
      const error = failureOf(yield* Effect.exit(Dispatcher.call(jobs, job("poison-1"))))
      const took = Date.now() - started
      assert.instanceOf(error, Dispatcher.ChildFailed)
      assert.strictEqual(error.key, "poison-1")
      assert.strictEqual(typeof error.cause, "string")
      assert.include(error.cause as string, "poisoned key poison-1")
      // three children (restart: 2 retries 20 ms apart), not the engine's endless replay
      assert.isBelow(took, 5000)
      // a handler's defect answers its own request (as in-process), and the child goes on
      const died = yield* Effect.exit(Dispatcher.call(jobs, job("d1", "die")))
      assert.isTrue(Exit.hasDies(died))
      assert.strictEqual((yield* Dispatcher.call(jobs, job("d1"))).key, "d1")
    }), 60_000)

  it.effect("an answer that does not fit its Schema is a typed SchemaMismatch at the caller; the runner goes on", () =>
    Effect.gen(function*() {
      const jobs = yield* Volatile
      yield* warmUp(jobs, "bad")
      const error = failureOf(yield* Effect.exit(Dispatcher.call(jobs, job("bad", "badAnswer"))))
      assert.instanceOf(error, Sharded.SchemaMismatch)
      // one class: the core's, under the Sharded name too
      assert.instanceOf(error, Dispatcher.SchemaMismatch)
      assert.deepStrictEqual([error.key, error.side], ["bad", "answer"])
      assert.include(error.what, "the answer did not encode on the runner")
      assert.include(error.message, `the answer for "bad" does not fit its Schema`)
      // a request that does not encode is refused before it is sent
      const notSent = failureOf(
        yield* Effect.exit(Dispatcher.call(jobs, { key: "bad", op: "nope" } as unknown as Job))
      )
      assert.instanceOf(notSent, Sharded.SchemaMismatch)
      assert.strictEqual(notSent.side, "request")
      assert.include(notSent.what, "the request did not encode at the caller")
      assert.include(notSent.message, `the request for "bad" does not fit its Schema`)
      assert.strictEqual((yield* Dispatcher.call(jobs, job("bad"))).key, "bad")
    }), 60_000)

  it.effect("volatile: no request id in the handler (run at most once, nothing to make idempotent)", () =>
    Effect.gen(function*() {
      const jobs = yield* Volatile
      const answer = yield* warmUp(jobs, "v1")
      assert.strictEqual(answer.key, "v1")
      assert.isUndefined(answer.requestId)
    }), 60_000)

  it.effect("persisted: answered through the message storage, with a stable request id in the handler", () =>
    Effect.gen(function*() {
      const stored = yield* Stored
      const answer = yield* warmUp(stored, "p1")
      assert.strictEqual(answer.key, "p1")
      assert.match(answer.requestId ?? "", /^\d+$/)
      const error = failureOf(yield* Effect.exit(Dispatcher.call(stored, job("p1", "fail"))))
      assert.instanceOf(error, JobFailed)
    }), 60_000)
})
