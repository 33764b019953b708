/**
 * The runner's lease as its hot path reads it (`Held`: the end of a shard's
 * lease, cached): every change that ends or shortens the lease is seen at the
 * next read, and an extension is seen once the cached end has passed. A
 * property test drives random confirmations, drops and reads against the
 * lease's own table.
 */
import { assert, describe, it } from "@effect/vitest"
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
})
