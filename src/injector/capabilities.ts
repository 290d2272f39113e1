/**
 * A container's capability bounding set as a PodSpec asks for it and containerd grants it: the default set,
 * plus `add`, minus `drop` (`ALL` honoured on both sides), or all of them when privileged. Pure: the node agent
 * launches containers with it, and the injector reads it to see which containers can reach the proxy uid.
 */
import type { V1Container } from "@kubernetes/client-node";

/** containerd's default capability set for a container (what `capabilities.drop: [ALL]` removes). */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  "CHOWN",
  "DAC_OVERRIDE",
  "FSETID",
  "FOWNER",
  "MKNOD",
  "NET_RAW",
  "SETGID",
  "SETUID",
  "SETFCAP",
  "SETPCAP",
  "NET_BIND_SERVICE",
  "SYS_CHROOT",
  "KILL",
  "AUDIT_WRITE",
];

function capabilityList(names: readonly string[]): string[] {
  return names.map((c) => c.toUpperCase().replace(/^CAP_/, ""));
}

/** The capability bounding set of a container: default + add − drop (`ALL` honoured on both sides). */
export function effectiveCapabilities(container: V1Container): string[] | "all" {
  const sc = container.securityContext;
  if (sc?.privileged) return "all";
  const add = capabilityList(sc?.capabilities?.add ?? []);
  const drop = capabilityList(sc?.capabilities?.drop ?? []);
  if (add.includes("ALL")) return "all";
  const set = new Set(drop.includes("ALL") ? [] : DEFAULT_CAPABILITIES);
  for (const c of drop) set.delete(c);
  for (const c of add) set.add(c);
  return [...set].sort();
}
