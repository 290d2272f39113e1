/**
 * Services as kube-proxy's nftables mode makes them, in a table of our own (`ip osm_services_<bridge>`, never
 * another): a packet from the pod bridge to ClusterIP:port is DNATed in prerouting to one ready endpoint's
 * address and target port, picked at random (`numgen random mod N vmap`); conntrack keeps the connection on
 * it and translates the replies back. The table is rendered whole (pure) and replaced in one `nft -f`
 * transaction, so a change never shows half a state.
 *
 * The DNATed packet is routed back out of the bridge, so the bridge needs `net.ipv4.conf.<bridge>.forwarding=1`
 * (that interface only; the global `ip_forward` is not touched), set only once this table is in place: its
 * `forward` chain drops whatever arrives from the bridge and would leave by another interface, so pods still
 * reach nothing beyond the bridge. A ClusterIP port without a ready endpoint is refused at once, as kube-proxy's
 * `no-endpoint-services` map does it: a new connection to it is rejected in prerouting, before routing (a TCP
 * reset, ICMP port unreachable for other protocols: the client's connect fails with ECONNREFUSED, no timeout).
 * kube-proxy rejects in the forward and input hooks, after routing, which a node's default route always
 * reaches; here a host need not have any route for the ClusterIP range. Replies come back un-DNATed by conntrack (the host's bridge netfilter,
 * `bridge-nf-call-iptables=1`, sees the bridged replies). A pod reaching its own Service (hairpin) is
 * masqueraded to the bridge's address so that the reply comes back through the host (the veth ports have
 * hairpin mode on).
 */
import type { CommandRunner } from "../../edge/command-runner.ts";
import { runChecked } from "../../edge/command-runner.ts";
import type { ServicePortRoute } from "./service-plan.ts";

/** The table of the node on `bridge` (one per bridge: a test daemon never touches the real one's). */
export function servicesTableName(bridge: string): string {
  return `osm_services_${bridge.replace(/[^A-Za-z0-9_]/g, "_")}`;
}

/** The nft script that replaces the whole table with one for `routes` (pure). */
export function renderServicesTable(bridge: string, routes: readonly ServicePortRoute[]): string {
  const table = servicesTableName(bridge);
  const chains: string[] = [];
  const elements: string[] = [];
  const hairpin = new Set<string>();
  const noEndpoints: string[] = [];
  routes.forEach((r, i) => {
    if (r.backends.length === 0) {
      noEndpoints.push(`${r.clusterIP} . ${r.protocol} . ${r.port} : goto reject_chain`);
      return;
    }
    const targets = r.backends.map((b, j) => {
      const ep = `ep_${i}_${j}`;
      chains.push(`\tchain ${ep} {\n\t\tmeta l4proto ${r.protocol} dnat to ${b.ip}:${b.port}\n\t}`);
      hairpin.add(`${b.ip} . ${b.ip}`);
      return `${j} : goto ${ep}`;
    });
    chains.push(
      `\tchain svc_${i} {\n\t\tcomment "${r.name.replace(/"/g, "")}"\n` +
        `\t\tnumgen random mod ${targets.length} vmap { ${targets.join(", ")} }\n\t}`,
    );
    elements.push(`${r.clusterIP} . ${r.protocol} . ${r.port} : goto svc_${i}`);
  });
  const withElements = (items: Iterable<string>) => {
    const list = [...items];
    return list.length > 0 ? `\n\t\telements = { ${list.join(", ")} }` : "";
  };
  return [
    `table ip ${table}`,
    `delete table ip ${table}`,
    `table ip ${table} {`,
    ...chains,
    "\tmap service_ports {",
    `\t\ttype ipv4_addr . inet_proto . inet_service : verdict${withElements(elements)}`,
    "\t}",
    "\tmap no_endpoint_services {",
    `\t\ttype ipv4_addr . inet_proto . inet_service : verdict${withElements(noEndpoints)}`,
    "\t}",
    // TCP gets a reset (the kernel rate-limits ICMP errors per destination: a client retrying would then wait
    // out its SYN retransmission); other protocols get ICMP port unreachable.
    "\tchain reject_chain {",
    "\t\tmeta l4proto tcp reject with tcp reset",
    "\t\treject",
    "\t}",
    // In prerouting, before any routing decision: ClusterIPs are no addresses the host has a route for (on a
    // host without one, a forward-hook reject is never reached and the client waits out its SYN retries).
    "\tchain service_endpoints_check {",
    "\t\ttype filter hook prerouting priority dstnat - 10; policy accept;",
    `\t\tiifname "${bridge}" ct state new ip daddr . meta l4proto . th dport vmap @no_endpoint_services`,
    "\t}",
    "\tset hairpin {",
    `\t\ttype ipv4_addr . ipv4_addr${withElements(hairpin)}`,
    "\t}",
    "\tchain services {",
    "\t\ttype nat hook prerouting priority dstnat; policy accept;",
    `\t\tiifname "${bridge}" ip daddr . meta l4proto . th dport vmap @service_ports`,
    "\t}",
    "\tchain forward {",
    "\t\ttype filter hook forward priority filter; policy accept;",
    `\t\tiifname "${bridge}" oifname != "${bridge}" drop`,
    "\t}",
    "\tchain hairpin {",
    "\t\ttype nat hook postrouting priority srcnat; policy accept;",
    "\t\tct status dnat ip saddr . ip daddr @hairpin masquerade",
    "\t}",
    "}",
    "",
  ].join("\n");
}

/** Replaces the table in one transaction. */
export async function applyServicesTable(runner: CommandRunner, script: string): Promise<void> {
  await runChecked(runner, ["nft", "-f", "-"], script);
}

/** Deletes the table of `bridge` (no-op when absent). */
export async function removeServicesTable(runner: CommandRunner, bridge: string): Promise<void> {
  const table = servicesTableName(bridge);
  await runner.run(["nft", "-f", "-"], { stdin: `table ip ${table}\ndelete table ip ${table}\n` });
}
