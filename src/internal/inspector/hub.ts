/**
 * The inspector's clients of `<prefix>/events`: one refresher computes each
 * frame once for all of them, and runs only while at least one is connected.
 * Each client has a buffer of one frame (a sliding queue): a slow client skips
 * frames, and nothing it does can hold the refresher or the dispatcher. A
 * client's frames end when it goes, when the dispatcher stops (after a last
 * frame) or when the inspector is unmounted.
 */
import { type Cause, Effect, FiberHandle, Queue, type Scope } from "effect"

/** @internal */
export const maxClients = 32

/**
 * What a frame is made of: the state as text, and whether it is the last
 * (the dispatcher stopped).
 *
 * @internal
 */
export interface Frame {
  readonly data: string
  readonly last: boolean
}

type Client = Queue.Queue<Frame, Cause.Done>

/** @internal */
export class Hub {
  private readonly clients = new Set<Client>()
  private closed = false
  private latest: Frame | undefined = undefined
  /** a refresher runs (or was started and not told to stop) */
  private refreshing = false
  /** which refresher is the current one: one being stopped must not mark a new one stopped */
  private generation = 0

  private constructor(
    /** one frame, computed once for every client */
    private readonly frame: Effect.Effect<Frame>,
    private readonly interval: number,
    private readonly refresher: FiberHandle.FiberHandle<void, never>,
    private readonly run: (effect: Effect.Effect<void>) => void,
    /** told when the last client has gone: what was kept for the next frame can go */
    private readonly onIdle: () => void
  ) {}

  /** A hub whose refresher runs in the current Scope (the inspector's layer): its end ends every client. */
  static make(frame: Effect.Effect<Frame>, interval: number, onIdle: () => void): Effect.Effect<Hub, never, Scope.Scope> {
    return Effect.gen(function*() {
      const refresher = yield* FiberHandle.make<void, never>()
      const runtime = yield* FiberHandle.runtime(refresher)<never>()
      // a new refresher replaces one still being stopped (the handle interrupts it)
      const hub: Hub = new Hub(frame, interval, refresher, (effect) => {
        runtime(effect)
      }, onIdle)
      yield* Effect.addFinalizer(() => Effect.sync(() => hub.close(undefined)))
      return hub
    })
  }

  /** How many clients are connected now. */
  get size(): number {
    return this.clients.size
  }

  /**
   * A new client's frames, until it goes (the Scope closes), the dispatcher
   * stops or the inspector goes; `undefined` when there are `maxClients`
   * already. After the end (the hub closed), the last frame only.
   */
  connect(): Effect.Effect<Queue.Dequeue<Frame, Cause.Done> | undefined, never, Scope.Scope> {
    return Effect.acquireRelease(
      Effect.suspend(() => {
        if (!this.closed && this.clients.size >= maxClients) return Effect.succeed(undefined)
        return Effect.map(Queue.sliding<Frame, Cause.Done>(1), (client) => {
          if (this.closed) {
            if (this.latest !== undefined) Queue.offerUnsafe(client, this.latest)
            Queue.endUnsafe(client)
            return client
          }
          this.clients.add(client)
          // a frame at once: the last one made (at most one interval old), or a first one now
          if (this.latest !== undefined) Queue.offerUnsafe(client, this.latest)
          if (!this.refreshing) {
            this.refreshing = true
            const generation = ++this.generation
            this.run(Effect.ensuring(
              this.refresh,
              Effect.sync(() => {
                if (this.generation === generation) this.refreshing = false
              })
            ))
          }
          return client
        })
      }),
      (client) =>
        Effect.suspend(() => {
          if (client === undefined) return Effect.void
          this.clients.delete(client)
          Queue.endUnsafe(client)
          if (this.clients.size > 0) return Effect.void
          // nobody looks: nothing runs, nothing is kept, and the next client gets a fresh frame (and a new
          // refresher, even while this one is still being stopped)
          this.latest = undefined
          this.refreshing = false
          this.generation++
          this.onIdle()
          return FiberHandle.clear(this.refresher)
        })
    )
  }

  /** Every interval, one frame for every client, while any is connected. */
  private get refresh(): Effect.Effect<void> {
    const loop: Effect.Effect<void> = Effect.suspend(() => {
      if (this.clients.size === 0 || this.closed) return Effect.void
      return this.frame.pipe(
        Effect.flatMap((frame) =>
          Effect.sync(() => {
            this.publish(frame)
            return frame.last
          })
        ),
        Effect.flatMap((last) => (last ? Effect.void : Effect.andThen(Effect.sleep(this.interval), loop)))
      )
    })
    return loop
  }

  private publish(frame: Frame): void {
    if (this.closed) return
    this.latest = frame
    for (const client of this.clients) Queue.offerUnsafe(client, frame)
    if (frame.last) this.close(frame)
  }

  /**
   * No more frames: each client gets `last` (if any) and its frames end; a
   * client connecting later gets the last frame only.
   */
  close(last: Frame | undefined): void {
    if (this.closed) return
    this.closed = true
    if (last !== undefined) this.latest = last
    for (const client of this.clients) {
      if (last !== undefined) Queue.offerUnsafe(client, last)
      Queue.endUnsafe(client)
    }
    this.clients.clear()
  }

  /** Stop refreshing (at the end, once every client is told). */
  get stop(): Effect.Effect<void> {
    return FiberHandle.clear(this.refresher)
  }
}
