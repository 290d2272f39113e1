/**
 * The real kube-apiserver allocates ClusterIPs anywhere in `--service-cluster-ip-range` and cannot be told to
 * skip an address, so the range itself must hold none the host uses: on some machines the documentation
 * network the embedded engine allocates from (192.0.2.0/24) is the uplink's own (eth0 192.0.2.2, gateway
 * 192.0.2.1), and a ClusterIP equal to either would send pods to the wrong host. Pure.
 */
import { cidrContains, parseCidr, parseIp } from "../../net/index.ts";

const CANDIDATES = ["192.0.2.128/25", "192.0.2.0/25", "192.0.2.64/26", "192.0.2.192/26"];

/** The first candidate range that contains none of `hostAddresses`; undefined if every one does. */
export function chooseServiceCidr(hostAddresses: Iterable<string>): string | undefined {
  const used = [...hostAddresses].map(parseIp);
  return CANDIDATES.find((text) => {
    const cidr = parseCidr(text);
    return !used.some((ip) => ip.family === cidr.family && cidrContains(cidr, ip));
  });
}
