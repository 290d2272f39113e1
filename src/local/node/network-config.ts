/**
 * Where the node's pods live on the host: the bridge, the name prefix of every netns/veth the agent creates,
 * and the address plan. Pure. A pod's addresses derive from one IPAM slot N: `subnet4 + N` and `subnet6 + N`,
 * so the v4 and v6 addresses of a pod always match and its netns is named `<prefix><N>`.
 */
import { ErrorCode, MeshError } from "../../errors.ts";
import { type Cidr, cidrRange, ipFromBigint, parseCidr } from "../../net/index.ts";

export interface NodeNetworkConfig {
  /** Host bridge (≤ 15 chars). */
  readonly bridge: string;
  /** Prefix of every netns and host-side veth the agent creates; `<prefix><slot>` must fit in 15 chars. */
  readonly namePrefix: string;
  /** The bridge's IPv4 subnet, e.g. `198.51.100.0/24`; the host is `subnet + gatewayOffset`. */
  readonly subnet4: string;
  /** The bridge's IPv6 subnet, e.g. `2001:db8:1::/64`. */
  readonly subnet6: string;
  /** Host (gateway) address offset inside both subnets. */
  readonly gatewayOffset: number;
  /** Inclusive slot range handed to pods (and external hosts' bridge legs). */
  readonly firstSlot: number;
  readonly lastSlot: number;
}

/**
 * The daemon's plan: bridge `osm0`, host 198.51.100.1 and 2001:db8:1::1. Pods take slots 2–127 only: the upper
 * half of 198.51.100.0/24 is left to tests (their bridges use 198.51.100.128/26 and .192/26), so a test never
 * shadows a running daemon's pod addresses in the host's routing table.
 */
export const DEFAULT_NETWORK: NodeNetworkConfig = {
  bridge: "osm0",
  namePrefix: "osm-pod-",
  subnet4: "198.51.100.0/24",
  subnet6: "2001:db8:1::/64",
  gatewayOffset: 1,
  firstSlot: 2,
  lastSlot: 127,
};

const IFNAMSIZ = 15;

/** The resolved plan: parsed subnets and address helpers. */
export interface NetworkPlan {
  readonly config: NodeNetworkConfig;
  readonly subnet4: Cidr;
  readonly subnet6: Cidr;
  readonly gateway4: string;
  readonly gateway6: string;
  /** Name of the netns and host veth of a slot. */
  sandboxName(slot: number): string;
  address4(slot: number): string;
  address6(slot: number): string;
  /** The slot of a name we created, or undefined for any other name. */
  slotOfName(name: string): number | undefined;
}

/** Validates a config and derives the plan. Throws InvalidArgument naming the field and value. */
export function buildNetworkPlan(config: NodeNetworkConfig): NetworkPlan {
  const bad = (field: string, value: unknown, reason: string) =>
    new MeshError(ErrorCode.InvalidArgument, `${field}: ${JSON.stringify(value)} ${reason}`);
  if (!/^[a-zA-Z0-9_.-]{1,15}$/.test(config.bridge))
    throw bad("bridge", config.bridge, "is not a valid interface name");
  const subnet4 = parseCidr(config.subnet4);
  const subnet6 = parseCidr(config.subnet6);
  if (subnet4.family !== 4) throw bad("subnet4", config.subnet4, "is not an IPv4 CIDR");
  if (subnet6.family !== 6) throw bad("subnet6", config.subnet6, "is not an IPv6 CIDR");
  const size4 = cidrRange(subnet4).last - subnet4.address;
  if (config.firstSlot < 1 || config.lastSlot < config.firstSlot || BigInt(config.lastSlot) >= size4) {
    throw bad("slots", [config.firstSlot, config.lastSlot], `do not fit inside ${config.subnet4}`);
  }
  const gw = config.gatewayOffset;
  if (gw >= config.firstSlot && gw <= config.lastSlot)
    throw bad("gatewayOffset", gw, "lies inside the pod slots");
  if (config.namePrefix.length + String(config.lastSlot).length > IFNAMSIZ) {
    throw bad("namePrefix", config.namePrefix, `is too long: names must fit in ${IFNAMSIZ} characters`);
  }
  if (!/^[a-z0-9-]+$/.test(config.namePrefix))
    throw bad("namePrefix", config.namePrefix, "must be [a-z0-9-]");
  const at4 = (n: number) => ipFromBigint(4, subnet4.address + BigInt(n)).toString();
  const at6 = (n: number) => ipFromBigint(6, subnet6.address + BigInt(n)).toString();
  const nameRe = new RegExp(`^${config.namePrefix.replaceAll("-", "\\-").replaceAll(".", "\\.")}(\\d+)$`);
  return {
    config,
    subnet4,
    subnet6,
    gateway4: at4(gw),
    gateway6: at6(gw),
    sandboxName: (slot) => `${config.namePrefix}${slot}`,
    address4: at4,
    address6: at6,
    slotOfName: (name) => {
      const m = nameRe.exec(name);
      if (!m?.[1]) return undefined;
      const slot = Number(m[1]);
      return slot >= config.firstSlot && slot <= config.lastSlot ? slot : undefined;
    },
  };
}
