/**
 * The proxy's settings: Kafka-Pixy's defaults, Effect duration strings, and a
 * bad value that stops start-up naming its variable.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Layer, Option, Redacted } from "effect"
import { PixyConfig } from "../../examples/pixy/Config.js"

const load = (env: Record<string, string>) =>
  Effect.gen(function*() {
    return yield* PixyConfig
  }).pipe(
    Effect.provide(PixyConfig.layer.pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env })))))
  )

describe("pixy settings", () => {
  it.effect("Kafka-Pixy's defaults", () =>
    Effect.gen(function*() {
      const config = yield* load({})
      assert.deepStrictEqual(
        {
          ...config,
          longPollingTimeout: Duration.toMillis(config.longPollingTimeout),
          subscriptionTimeout: Duration.toMillis(config.subscriptionTimeout),
          ackTimeout: Duration.toMillis(config.ackTimeout),
          inspect: { ...config.inspect, interval: Duration.toMillis(config.inspect.interval) }
        },
        {
          host: "127.0.0.1",
          port: 19092,
          longPollingTimeout: 3_000,
          subscriptionTimeout: 15_000,
          channelBufferSize: 64,
          ackTimeout: 300_000,
          inspect: { enabled: true, token: Option.none(), interval: 1_000, stuckAfter: Option.none() }
        }
      )
    }))

  it.effect("durations are Effect duration strings", () =>
    Effect.gen(function*() {
      const config = yield* load({ PIXY_LONG_POLLING_TIMEOUT: "500 millis", PIXY_ACK_TIMEOUT: "2 minutes", PIXY_PORT: "0" })
      assert.strictEqual(Duration.toMillis(config.longPollingTimeout), 500)
      assert.strictEqual(Duration.toMillis(config.ackTimeout), 120_000)
      assert.strictEqual(config.port, 0)
    }))

  it.effect("the inspector's settings: off, a bearer token (kept redacted), its interval and stuck threshold", () =>
    Effect.gen(function*() {
      assert.isFalse((yield* load({ PIXY_INSPECT: "false" })).inspect.enabled)
      const config = yield* load({
        PIXY_INSPECT_TOKEN: "s3cret",
        PIXY_INSPECT_INTERVAL: "250 millis",
        PIXY_INSPECT_STUCK_AFTER: "2 seconds"
      })
      assert.strictEqual(Option.map(config.inspect.token, Redacted.value).pipe(Option.getOrUndefined), "s3cret")
      assert.notInclude(String(config.inspect.token), "s3cret")
      assert.strictEqual(Duration.toMillis(config.inspect.interval), 250)
      assert.strictEqual(Option.map(config.inspect.stuckAfter, Duration.toMillis).pipe(Option.getOrUndefined), 2_000)
    }))

  it.effect("a bad value fails naming the variable", () =>
    Effect.gen(function*() {
      const bad: ReadonlyArray<readonly [string, string]> = [
        ["PIXY_PORT", "http"],
        ["PIXY_PORT", "70000"],
        ["PIXY_LONG_POLLING_TIMEOUT", "soon"],
        ["PIXY_SUBSCRIPTION_TIMEOUT", "0 millis"],
        ["PIXY_CHANNEL_BUFFER_SIZE", "0"],
        ["PIXY_CHANNEL_BUFFER_SIZE", "2.5"],
        ["PIXY_ACK_TIMEOUT", "-1 seconds"],
        ["PIXY_INSPECT", "maybe"],
        ["PIXY_INSPECT_INTERVAL", "often"],
        ["PIXY_INSPECT_STUCK_AFTER", "0 millis"]
      ]
      for (const [name, value] of bad) {
        const error = yield* Effect.flip(load({ [name]: value }))
        assert.strictEqual(error._tag, "ConfigError")
        assert.include(error.message, name, `${name}=${value}: ${error.message}`)
      }
    }))
})
