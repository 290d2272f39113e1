/**
 * Service ClusterIPs: allocated from 192.0.2.1–254 (the embedded engine's Service range), never one in use
 * and never one of the host's own addresses or gateways (`hostAddresses`, injected: the API server passes
 * `hostIPv4Addresses`, tests a fixed set). Pure apart from the probe it is given.
 */
import type { Obj } from "./json.ts";
import { ApiError, invalid } from "./status.ts";

export type HostAddressProbe = () => ReadonlySet<string>;

export interface ClusterIpAllocator {
  /** A free ClusterIP, given the IPs Services hold now; 500 "range is full" when none is left. */
  allocate(used: ReadonlySet<string | undefined>): string;
  /**
   * Re-checks `svc`'s IP right before the write (two creates may allocate the same IP while admission
   * awaits): an allocated IP taken meanwhile is re-allocated, an IP the user asked for is refused (422).
   */
  recheck(svc: Obj, requested: string | undefined, used: ReadonlySet<string | undefined>): void;
}

export function createClusterIpAllocator(hostAddresses: HostAddressProbe): ClusterIpAllocator {
  const allocate = (used: ReadonlySet<string | undefined>): string => {
    const host = hostAddresses();
    for (let i = 1; i < 255; i++) {
      const ip = `192.0.2.${i}`;
      if (!used.has(ip) && !host.has(ip)) return ip;
    }
    throw new ApiError(
      500,
      "InternalError",
      "Internal error occurred: failed to allocate a serviceIP: range is full",
    );
  };
  return {
    allocate,
    recheck(svc, requested, used) {
      const ip = svc.spec?.clusterIP;
      if (!ip || ip === "None" || !used.has(ip)) return;
      if (requested) {
        throw invalid("", "Service", svc.metadata.name, [
          {
            field: "spec.clusterIPs",
            message: `Invalid value: ["${ip}"]: failed to allocate IP ${ip}: provided IP is already allocated`,
          },
        ]);
      }
      svc.spec.clusterIP = allocate(used);
      svc.spec.clusterIPs = [svc.spec.clusterIP];
    },
  };
}
