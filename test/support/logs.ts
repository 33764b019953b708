import { type Cause, ConfigProvider, Effect, Logger, References } from "effect"

export interface Captured {
  readonly level: string
  readonly message: unknown
  readonly cause: Cause.Cause<unknown>
  readonly annotations: Record<string, unknown>
}

/** A logger that keeps every entry, with the annotations of the fiber that logged it. */
export const captureLogs = () => {
  const entries: Array<Captured> = []
  const logger = Logger.make((options) => {
    entries.push({
      level: options.logLevel,
      message: options.message,
      cause: options.cause,
      annotations: { ...options.fiber.getRef(References.CurrentLogAnnotations) }
    })
  })
  return { entries, layer: Logger.layer([logger]) }
}

/** Run without logging: tests that make children fail on purpose would fill the output. */
export const quiet = Effect.provide(Logger.layer([]))

/** Configuration read from these environment variables only. */
export const withEnv = (env: Record<string, string>) => ConfigProvider.layer(ConfigProvider.fromEnv({ env }))
