/**
 * With `maxChildren`: the keys in the order of their last accepted request,
 * least recent first, as a list threaded through the entries themselves. A
 * use moves its entry to the end in O(1), with no allocation; only a
 * dispatcher with a cap makes its entries `Recent` (two links more each).
 *
 * @internal
 */
export interface Recent {
  older: Recent | undefined
  newer: Recent | undefined
}

/** @internal */
export class Recency<A extends Recent> {
  private oldest: A | undefined = undefined
  private newest: A | undefined = undefined

  /** A new key: the most recent. */
  add(entry: A): void {
    entry.older = this.newest
    entry.newer = undefined
    if (this.newest === undefined) this.oldest = entry
    else this.newest.newer = entry
    this.newest = entry
  }

  /** A request accepted for the key: it becomes the most recent. */
  use(entry: A): void {
    if (this.newest === entry) return
    this.remove(entry)
    this.add(entry)
  }

  /** The key is forgotten. */
  remove(entry: A): void {
    const { newer, older } = entry
    if (older === undefined && this.oldest !== entry) return // not in the list
    if (older === undefined) this.oldest = newer as A | undefined
    else older.newer = newer
    if (newer === undefined) this.newest = older as A | undefined
    else newer.older = older
    entry.older = undefined
    entry.newer = undefined
  }

  /** Least recent first. */
  *fromOldest(): Generator<A> {
    for (let entry = this.oldest; entry !== undefined; entry = entry.newer as A | undefined) yield entry
  }
}
