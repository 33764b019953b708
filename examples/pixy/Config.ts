/**
 * The proxy's settings: Kafka-Pixy's names and defaults, read from the
 * environment through `effect/Config` and validated with Schema. A bad value
 * fails start-up with a `ConfigError` naming the variable.
 *
 * | variable                    | default      | Kafka-Pixy                       |
 * |-----------------------------|--------------|----------------------------------|
 * | `PIXY_HOST`                 | `127.0.0.1`  | `tcpAddr` (host part)            |
 * | `PIXY_PORT`                 | `19092`      | `tcpAddr` (port part); 0: any    |
 * | `PIXY_LONG_POLLING_TIMEOUT` | `3 seconds`  | `consumer.long_polling_timeout`  |
 * | `PIXY_SUBSCRIPTION_TIMEOUT` | `15 seconds` | `consumer.subscription_timeout`  |
 * | `PIXY_CHANNEL_BUFFER_SIZE`  | `64`         | `consumer.channel_buffer_size`   |
 * | `PIXY_ACK_TIMEOUT`          | `5 minutes`  | `consumer.ack_timeout`           |
 * | `PIXY_INSPECT`              | `true`       | the inspector at `/_inspect`     |
 * | `PIXY_INSPECT_TOKEN`        | none         | a bearer token it then asks for  |
 * | `PIXY_INSPECT_INTERVAL`     | `1 second`   | its refresh                      |
 * | `PIXY_INSPECT_STUCK_AFTER`  | none         | its stuck threshold (else 408's) |
 *
 * Durations are Effect duration strings: `500 millis`, `3 seconds`.
 */
import { Config, Context, Duration, Layer, type Option, type Redacted, Schema } from "effect"

export interface Settings {
  readonly host: string
  readonly port: number
  /** how long a consume request waits for a message before `408` */
  readonly longPollingTimeout: Duration.Duration
  /** how long a topic consumer lives without a request */
  readonly subscriptionTimeout: Duration.Duration
  /** requests each consumer's mailbox holds before `429` */
  readonly channelBufferSize: number
  /** how long a consumed message waits for its ack before it is offered again */
  readonly ackTimeout: Duration.Duration
  /** the inspector (`effect-dispatcher/Inspector`) at `/_inspect` */
  readonly inspect: InspectSettings
}

export interface InspectSettings {
  readonly enabled: boolean
  /** when set, the inspector answers only `Authorization: Bearer <token>` (else 403) */
  readonly token: Option.Option<Redacted.Redacted<string>>
  readonly interval: Duration.Duration
  /** its stuck threshold; none: the long-polling timeout (the root's requestTimeout) */
  readonly stuckAfter: Option.Option<Duration.Duration>
}

const positiveDuration = Schema.DurationFromString.check(
  Schema.makeFilter((d: Duration.Duration) => Duration.toMillis(d) > 0, {
    expected: "a positive duration such as \"3 seconds\" or \"500 millis\""
  })
)

const port = Schema.NumberFromString.check(
  Schema.isInt({ expected: "a whole port number" }),
  Schema.isBetween({ minimum: 0, maximum: 65535 })
)

const positiveInt = Schema.NumberFromString.check(
  Schema.isInt({ expected: "a whole number" }),
  Schema.isGreaterThanOrEqualTo(1)
)

/** The settings as a `Config`: each variable optional, with Kafka-Pixy's default. */
export const settings: Config.Config<Settings> = Config.all({
  host: Config.schema(Schema.NonEmptyString, "PIXY_HOST").pipe(Config.withDefault("127.0.0.1")),
  port: Config.schema(port, "PIXY_PORT").pipe(Config.withDefault(19092)),
  longPollingTimeout: Config.schema(positiveDuration, "PIXY_LONG_POLLING_TIMEOUT").pipe(
    Config.withDefault(Duration.seconds(3))
  ),
  subscriptionTimeout: Config.schema(positiveDuration, "PIXY_SUBSCRIPTION_TIMEOUT").pipe(
    Config.withDefault(Duration.seconds(15))
  ),
  channelBufferSize: Config.schema(positiveInt, "PIXY_CHANNEL_BUFFER_SIZE").pipe(Config.withDefault(64)),
  ackTimeout: Config.schema(positiveDuration, "PIXY_ACK_TIMEOUT").pipe(Config.withDefault(Duration.minutes(5))),
  inspect: Config.all({
    enabled: Config.Boolean("PIXY_INSPECT").pipe(Config.withDefault(true)),
    token: Config.option(Config.Redacted("PIXY_INSPECT_TOKEN")),
    interval: Config.schema(positiveDuration, "PIXY_INSPECT_INTERVAL").pipe(Config.withDefault(Duration.seconds(1))),
    stuckAfter: Config.option(Config.schema(positiveDuration, "PIXY_INSPECT_STUCK_AFTER"))
  })
})

export class PixyConfig extends Context.Service<PixyConfig, Settings>()("pixy/Config") {
  /** Read from the current `ConfigProvider` (the environment by default). */
  static readonly layer: Layer.Layer<PixyConfig, Config.ConfigError> = Layer.effect(PixyConfig, settings)
}
