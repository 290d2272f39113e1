/**
 * IPv4 addresses the host itself uses: its interfaces' addresses and its routes' gateways. The Service
 * (ClusterIP) allocator never hands these out: the documentation range it allocates from (192.0.2.0/24) is,
 * on some machines, the uplink's own network (measured here: eth0 192.0.2.2/24, gateway 192.0.2.1), and a
 * ClusterIP equal to the host's address or its gateway would make pods on the bridge reach the wrong host.
 */
import { readFileSync } from "node:fs";
import { networkInterfaces } from "node:os";

/** Gateways (dotted quads) of `/proc/net/route`, whose addresses are little-endian hex. Pure. */
export function parseRouteGateways(procNetRoute: string): string[] {
  const gateways: string[] = [];
  for (const line of procNetRoute.split("\n").slice(1)) {
    const hex = line.trim().split(/\s+/)[2];
    if (!hex || !/^[0-9A-Fa-f]{8}$/.test(hex) || /^0+$/.test(hex)) continue;
    const value = Number.parseInt(hex, 16);
    gateways.push([0, 8, 16, 24].map((shift) => (value >>> shift) & 0xff).join("."));
  }
  return gateways;
}

/** The host's own IPv4 addresses and gateways, read now (interfaces come and go). */
export function hostIPv4Addresses(): Set<string> {
  const addresses = new Set<string>();
  for (const list of Object.values(networkInterfaces())) {
    for (const address of list ?? []) if (address.family === "IPv4") addresses.add(address.address);
  }
  let routes = "";
  try {
    routes = readFileSync("/proc/net/route", "utf8");
  } catch {
    // Not Linux, or no procfs: interface addresses alone.
  }
  for (const gateway of parseRouteGateways(routes)) addresses.add(gateway);
  return addresses;
}
