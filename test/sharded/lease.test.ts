/**
 * The runner's lease as its hot path reads it (`Held`: the end of a shard's
 * lease, cached): every change that ends or shortens the lease is seen at the
 * next read, and an extension is seen once the cached end has passed. A
 * property test drives random confirmations, drops and reads against the
 * lease's own table. Its time advances with the Clock's monotonic time and
 * catches up with the wall clock: neither a wall clock set back nor a
 * suspended VM stretches it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import { Held, Lease } from "../../src/internal/sharded/lease.js"

describe("a shard's lease as a request reads it", () => {
  it("holds until its end, and sees a drop, a release of all and a shorter confirmation at once", () => {
    const lease = new Lease(1000) // lasts 800
    const held = new Held(lease, "default:1")
    assert.isFalse(held.at(0))
    lease.confirm(["default:1"], 100)
    assert.isTrue(held.at(100))
    assert.isTrue(held.at(899))
    assert.isFalse(held.at(900))
    lease.confirm(["default:1"], 500)
    assert.isTrue(held.at(900))
    lease.drop("default:1")
    assert.isFalse(held.at(901))
    lease.confirm(["default:1"], 1000)
    assert.isTrue(held.at(1001))
    lease.dropAll()
    assert.isFalse(held.at(1002))
    lease.confirm(["default:1"], 2000)
    assert.isTrue(held.at(2001))
    // a confirmation from a refresh that started earlier shortens the lease
    lease.confirm(["default:1"], 1100)
    assert.isFalse(held.at(2001))
  })

  it("agrees with the lease's table under random confirmations, drops and reads (property)", () => {
    const shards = ["default:1", "default:2", "default:3"]
    const op = fc.oneof(
      fc.record({ _tag: fc.constant("confirm" as const), shard: fc.nat(2), at: fc.nat(5000) }),
      fc.record({ _tag: fc.constant("drop" as const), shard: fc.nat(2) }),
      fc.record({ _tag: fc.constant("dropAll" as const) }),
      fc.record({ _tag: fc.constant("read" as const), shard: fc.nat(2), advance: fc.nat(400) })
    )
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const lease = new Lease(1000)
        const helds = shards.map((shard) => new Held(lease, shard))
        let now = 0
        for (const o of ops) {
          if (o._tag === "confirm") lease.confirm([shards[o.shard]!], o.at)
          else if (o._tag === "drop") lease.drop(shards[o.shard]!)
          else if (o._tag === "dropAll") lease.dropAll()
          else {
            now += o.advance
            assert.strictEqual(helds[o.shard]!.at(now), lease.holds(shards[o.shard]!, now))
          }
        }
      }),
      { numRuns: 2000 }
    )
  })

  it.effect("a wall clock set back does not stretch it: the lease reads the Clock's monotonic time", () =>
    Effect.gen(function*() {
      const clock = yield* Clock.Clock
      const lease = new Lease(1000) // lasts 800
      const held = new Held(lease, "default:1")
      yield* TestClock.setTime(10_000_000)
      lease.confirm(["default:1"], lease.now(clock))
      assert.isTrue(held.at(lease.now(clock)))
      // NTP steps the wall clock back an hour, then 900 ms pass
      yield* TestClock.setTime(10_000_000 - 3_600_000)
      yield* TestClock.adjust("900 millis")
      assert.isFalse(held.at(lease.now(clock)))
      // on the wall clock it would still hold for an hour
      assert.isBelow(clock.currentTimeMillisUnsafe(), 10_000_000)
    }))

  it("time the monotonic clock did not count is caught up from the wall clock (a suspended VM)", () => {
    let monotonicMillis = 5_000
    let wallMillis = 1_000_000
    // only what the lease reads of a Clock
    const clock = {
      monotonicTimeNanosUnsafe: () => BigInt(monotonicMillis) * 1_000_000n,
      currentTimeMillisUnsafe: () => wallMillis
    } as unknown as Clock.Clock
    const lease = new Lease(1000) // lasts 800
    const held = new Held(lease, "default:1")
    lease.confirm(["default:1"], lease.now(clock))
    monotonicMillis += 100
    wallMillis += 100
    assert.isTrue(held.holds(clock))
    // suspended for a minute: the wall clock moved on, the monotonic one did not
    wallMillis += 60_000
    assert.isFalse(held.holds(clock))
    // and the lease's time never goes back, whichever clock steps back
    const before = lease.now(clock)
    wallMillis -= 3_600_000
    monotonicMillis += 1
    assert.isAtLeast(lease.now(clock), before)
  })
})
