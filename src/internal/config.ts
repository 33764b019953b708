import { Config, Duration, Option, Schema } from "effect"
import type * as Dispatcher from "../Dispatcher.js"

const positiveInt = Schema.Int.check(Schema.isGreaterThan(0))

const duration = (valid: (millis: number) => boolean, expected: string) =>
  Schema.DurationFromString.check(
    Schema.makeFilter((d: Duration.Duration) => valid(Duration.toMillis(d)), { expected })
  )

/**
 * The options as configuration: `PREFIX_MAILBOX_CAPACITY`, `PREFIX_NAME`,
 * `PREFIX_OVERFLOW_WAIT`, `PREFIX_REQUEST_TIMEOUT`, `PREFIX_MAX_CHILDREN`,
 * `PREFIX_SHUTDOWN_TIMEOUT`, each
 * optional and validated with Schema; a bad value is a `ConfigError` whose
 * path names the variable.
 *
 * @internal
 */
export const config = (prefix = "DISPATCHER"): Config.Config<Dispatcher.Options> => {
  const at = (name: string) => [prefix, name]
  return Config.all({
    mailboxCapacity: Config.option(Config.schema(positiveInt, at("MAILBOX_CAPACITY"))),
    name: Config.option(Config.schema(Schema.NonEmptyString, at("NAME"))),
    overflowWait: Config.option(
      Config.schema(duration((ms) => ms >= 0, "a duration of zero or more (e.g. \"100 millis\")"), at("OVERFLOW_WAIT"))
    ),
    requestTimeout: Config.option(
      Config.schema(duration((ms) => ms > 0, "a positive duration (e.g. \"3 seconds\")"), at("REQUEST_TIMEOUT"))
    ),
    maxChildren: Config.option(Config.schema(positiveInt, at("MAX_CHILDREN"))),
    shutdownTimeout: Config.option(
      Config.schema(duration((ms) => ms >= 0, "a duration of zero or more (e.g. \"30 seconds\")"), at("SHUTDOWN_TIMEOUT"))
    )
  }).pipe(
    Config.map((c): Dispatcher.Options => ({
      ...Option.match(c.mailboxCapacity, { onNone: () => ({}), onSome: (mailboxCapacity) => ({ mailboxCapacity }) }),
      ...Option.match(c.name, { onNone: () => ({}), onSome: (name) => ({ name }) }),
      ...Option.match(c.overflowWait, { onNone: () => ({}), onSome: (wait) => ({ overflow: { wait } }) }),
      ...Option.match(c.requestTimeout, { onNone: () => ({}), onSome: (requestTimeout) => ({ requestTimeout }) }),
      ...Option.match(c.maxChildren, { onNone: () => ({}), onSome: (maxChildren) => ({ maxChildren }) }),
      ...Option.match(c.shutdownTimeout, { onNone: () => ({}), onSome: (shutdownTimeout) => ({ shutdownTimeout }) })
    }))
  )
}
