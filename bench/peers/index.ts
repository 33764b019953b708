/** The peers by name, loaded on demand (effect/cluster alone takes a while to import). */
import type { Peer, PeerName } from "../types.js"

export const loadPeer = async (name: PeerName): Promise<Peer> => {
  switch (name) {
    case "effect-dispatcher":
      return (await import("./effect-dispatcher.js")).peer
    case "effect-floor":
      return (await import("./effect-floor.js")).peer
    case "plain":
      return (await import("./plain.js")).peer
    case "effect-diy":
      return (await import("./effect-diy.js")).peer
    case "effect-cluster":
      return (await import("./effect-cluster.js")).peer
  }
}
