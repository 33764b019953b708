/**
 * plain: a hand-written plain-JS/Promise dispatcher, the floor for this
 * workload in JavaScript. A Map of key -> array mailbox bounded by the
 * capacity, an async loop per key that takes everything waiting and answers it,
 * a successor when a child ends with work left (otherwise the key is
 * forgotten), a full mailbox answered at once, and a graceful stop (mailboxes
 * closed, children drain, leftovers answered).
 */
import { type Handler, type PromisePeer, REJECTED } from "../types.js"

class TooManyRequests extends Error {
  constructor(readonly key: string, readonly capacity: number) {
    super(`too many requests for ${key}`)
  }
}
class Unavailable extends Error {
  constructor(readonly key: string) {
    super(`${key} unavailable`)
  }
}

class Pending {
  constructor(
    readonly n: number,
    readonly topic: string,
    readonly resolve: (value: number) => void,
    readonly reject: (error: unknown) => void
  ) {}
}

/** A key's mailbox and the child serving it. */
class Entry {
  items: Array<Pending> = []
  waiter: ((open: boolean) => void) | undefined = undefined
  closed = false
  done: Promise<void> | undefined = undefined
  full: TooManyRequests | undefined = undefined
  constructor(readonly key: string) {}

  push(pending: Pending): void {
    this.items.push(pending)
    const waiter = this.waiter
    if (waiter !== undefined) {
      this.waiter = undefined
      waiter(true)
    }
  }

  /** Everything waiting, or, when there is nothing, a wait: false once closed and empty. */
  takeAll(): Array<Pending> | Promise<boolean> {
    if (this.items.length > 0) {
      const batch = this.items
      this.items = []
      return batch
    }
    if (this.closed) return Promise.resolve(false)
    return new Promise((resolve) => (this.waiter = resolve))
  }

  close(): void {
    this.closed = true
    const waiter = this.waiter
    if (waiter !== undefined) {
      this.waiter = undefined
      waiter(false)
    }
  }
}

type Body = (entry: Entry) => Promise<void>

class Keyed {
  readonly entries = new Map<string, Entry>()
  stopping = false
  constructor(readonly capacity: number, readonly body: Body) {}

  /** Place a request; false with it answered when it cannot be placed. */
  place(key: string, pending: Pending): void {
    if (this.stopping) return pending.reject(new Unavailable(key))
    let entry = this.entries.get(key)
    if (entry === undefined) {
      entry = new Entry(key)
      this.entries.set(key, entry)
      entry.push(pending)
      this.start(entry)
      return
    }
    if (entry.items.length >= this.capacity) {
      return pending.reject(entry.full ??= new TooManyRequests(key, this.capacity))
    }
    entry.push(pending)
  }

  isFull(key: string): boolean {
    const entry = this.entries.get(key)
    return entry !== undefined && entry.items.length >= this.capacity
  }

  start(entry: Entry): void {
    entry.done = this.body(entry).then(() => this.ended(entry))
  }

  /** successor or forget */
  ended(entry: Entry): void {
    if (entry.items.length > 0) {
      if (!this.stopping) return this.start(entry)
      const left = entry.items
      entry.items = []
      for (const pending of left) pending.reject(new Unavailable(entry.key))
    }
    if (this.entries.get(entry.key) === entry) this.entries.delete(entry.key)
  }

  async stop(): Promise<void> {
    this.stopping = true
    const done: Array<Promise<void>> = []
    for (const entry of this.entries.values()) {
      entry.close()
      done.push(entry.done!)
    }
    await Promise.all(done)
  }
}

const echoBody: Body = async (entry) => {
  for (;;) {
    let batch = entry.takeAll()
    if (!Array.isArray(batch)) {
      if (!(await batch)) return
      batch = entry.takeAll() as Array<Pending>
      if (!Array.isArray(batch)) return
    }
    for (let i = 0; i < batch.length; i++) batch[i]!.resolve(batch[i]!.n)
  }
}

/** The echo body with a handler (W1's `sync` and `async` rows). */
const echoBodyWith = (handler: Handler): Body => {
  if (handler === "succeed") return echoBody
  if (handler === "sync") {
    // a synchronous handler is a function call
    const handle = (n: number): number => n
    return async (entry) => {
      for (;;) {
        let batch = entry.takeAll()
        if (!Array.isArray(batch)) {
          if (!(await batch)) return
          batch = entry.takeAll() as Array<Pending>
          if (!Array.isArray(batch)) return
        }
        for (let i = 0; i < batch.length; i++) batch[i]!.resolve(handle(batch[i]!.n))
      }
    }
  }
  // one asynchronous hop per request, one request at a time and in order (as `serve` does)
  const handle = (n: number): Promise<number> => Promise.resolve(n)
  return async (entry) => {
    for (;;) {
      let batch = entry.takeAll()
      if (!Array.isArray(batch)) {
        if (!(await batch)) return
        batch = entry.takeAll() as Array<Pending>
        if (!Array.isArray(batch)) return
      }
      for (let i = 0; i < batch.length; i++) batch[i]!.resolve(await handle(batch[i]!.n))
    }
  }
}

const onceBody: Body = async (entry) => {
  if (entry.items.length === 0 && !(await entry.takeAll())) return
  const pending = entry.items.shift()
  pending?.resolve(pending.n)
}

const stuckBody: Body = async (entry) => {
  if (entry.items.length === 0 && !(await entry.takeAll())) return
  entry.items = []
  await new Promise<void>(() => {})
}

const rejected = Promise.resolve(REJECTED)

export const peer: PromisePeer = {
  kind: "promise",
  stopKind: "graceful: every mailbox is closed, children drain and end",
  make: ({ capacity, child, handler = "succeed" }) => {
    const keyed = new Keyed(capacity, child === "echo" ? echoBodyWith(handler) : child === "once" ? onceBody : stuckBody)
    const call = (key: string, n: number) =>
      new Promise<number>((resolve, reject) => keyed.place(key, new Pending(n, "", resolve, reject)))
    return {
      call,
      tryCall: (key, n) => keyed.isFull(key) ? rejected : call(key, n),
      stop: () => keyed.stop()
    }
  },
  makeTree: ({ capacity }) => {
    // a group's child routes each request, with the caller's resolve/reject, to its own topics
    const groupBody: Body = async (entry) => {
      const topics = new Keyed(capacity, echoBody)
      for (;;) {
        let batch = entry.takeAll()
        if (!Array.isArray(batch)) {
          if (!(await batch)) break
          batch = entry.takeAll() as Array<Pending>
          if (!Array.isArray(batch)) break
        }
        for (let i = 0; i < batch.length; i++) topics.place(batch[i]!.topic, batch[i]!)
      }
      await topics.stop()
    }
    const groups = new Keyed(capacity, groupBody)
    return {
      call: (group, topic, n) =>
        new Promise<number>((resolve, reject) => groups.place(group, new Pending(n, topic, resolve, reject))),
      stop: () => groups.stop()
    }
  }
}
