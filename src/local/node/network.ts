/**
 * Host networking of the node: the bridge, one netns + veth per sandbox, and routes to external hosts.
 *
 * No NAT and no IP forwarding: pods talk to each other and to the host's bridge addresses at layer 2 (the
 * bridge switches frames; a packet to the host's own address is local delivery), and an external host is just
 * another netns on the bridge whose extra addresses pods reach through a route via its bridge leg (again L2).
 * So `net.ipv4.ip_forward` is never touched and nothing here can reach the uplink.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { CommandRunner } from "../../edge/command-runner.ts";
import { runChecked } from "../../edge/command-runner.ts";
import type { NetworkPlan } from "./network-config.ts";
import { running } from "./process-group.ts";

/**
 * A route every sandbox gets: `dst` via the bridge-leg address `via` (an external host), or on-link over the
 * bridge without `via` (the Service range: the pod holding a ClusterIP answers ARP for it).
 */
export interface SandboxRoute {
  readonly dst: string;
  readonly via?: string;
}

export interface SandboxAddresses {
  readonly name: string;
  readonly ip4: string;
  readonly ip6: string;
}

/** A stable locally-administered MAC for the bridge: without one, Linux gives the bridge its lowest port's MAC and
 * changes it as pods come and go, which leaves stale gateway neighbour entries in the other pods. */
function bridgeMac(bridge: string): string {
  const h = createHash("sha256").update(bridge).digest();
  return ["02", ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, "0"))].join(":");
}

function kill(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}

/** True when `pid` is PID 1 of a PID namespace below the host's (a pod's namespace holder). */
function namespaceInit(pid: number): boolean {
  try {
    const nspid =
      /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]?.split(/\s+/) ?? [];
    return nspid.length > 1 && nspid[nspid.length - 1] === "1";
  } catch {
    return false;
  }
}

function notFound(stderr: string): boolean {
  return /Cannot find device|does not exist|No such file|Cannot open network namespace/i.test(stderr);
}

export interface HostNetwork {
  /** The netns/veth name of a slot. */
  sandboxName(slot: number): string;
  /** Creates the bridge with the gateway addresses (idempotent). */
  ensureBridge(): Promise<void>;
  /** Deletes the bridge (no-op when absent). */
  removeBridge(): Promise<void>;
  bridgeExists(): Promise<boolean>;
  /** Creates netns + veth for a slot, with addresses, default routes and `routes`. Cleans up on failure. */
  createSandbox(
    slot: number,
    routes: readonly SandboxRoute[],
    extraLoAddresses?: readonly string[],
  ): Promise<SandboxAddresses>;
  /**
   * Removes a sandbox: first SIGKILLs every process still inside its netns (a netns deleted under live processes
   * would keep them running where nobody can find them), then the veth and the netns (each no-op when absent).
   */
  deleteSandbox(name: string): Promise<void>;
  /** Adds (replaces) routes in an existing sandbox; missing sandboxes are skipped. */
  addRoutes(name: string, routes: readonly SandboxRoute[]): Promise<void>;
  removeRoutes(name: string, routes: readonly SandboxRoute[]): Promise<void>;
  /** Names of netns and links on the host that carry our prefix. */
  listOurs(): Promise<{ netns: string[]; links: string[] }>;
  /** PIDs of every process inside a sandbox's netns. */
  pidsIn(name: string): Promise<number[]>;
}

/** The host network for `plan`, driving `ip` through `runner`. */
export function createHostNetwork(plan: NetworkPlan, runner: CommandRunner): HostNetwork {
  const { bridge } = plan.config;
  const p4 = plan.subnet4.prefixLength;
  const p6 = plan.subnet6.prefixLength;
  const routeLines = (verb: "replace" | "del", routes: readonly SandboxRoute[]) =>
    routes.map((r) => `route ${verb} ${r.dst}${r.via ? ` via ${r.via}` : ""} dev eth0\n`).join("");

  const self: HostNetwork = {
    sandboxName: (slot) => plan.sandboxName(slot),
    async bridgeExists() {
      return (await runner.run(["ip", "link", "show", "dev", bridge])).code === 0;
    },
    async ensureBridge() {
      if (!(await self.bridgeExists())) {
        await runChecked(runner, [
          "ip",
          "link",
          "add",
          bridge,
          "address",
          bridgeMac(bridge),
          "type",
          "bridge",
        ]);
      }
      await runChecked(
        runner,
        ["ip", "-batch", "-"],
        `addr replace ${plan.gateway4}/${p4} dev ${bridge}\n` +
          `addr replace ${plan.gateway6}/${p6} dev ${bridge} nodad\n` +
          `link set ${bridge} up\n`,
      );
      // Defence in depth: should the host forward IPv4 anyway (global ip_forward on before us), packets that
      // arrive from pods on this bridge still may not be forwarded to another interface (ip-sysctl:
      // conf/<if>/forwarding applies to packets received on <if>). Enabling ip_forward later resets it.
      await runChecked(runner, ["sysctl", "-q", "-w", `net/ipv4/conf/${bridge}/forwarding=0`]);
    },
    async removeBridge() {
      const r = await runner.run(["ip", "link", "del", bridge]);
      if (r.code !== 0 && !notFound(r.stderr)) await runChecked(runner, ["ip", "link", "del", bridge]);
    },
    async createSandbox(slot, routes, extraLoAddresses = []) {
      const name = plan.sandboxName(slot);
      const ip4 = plan.address4(slot);
      const ip6 = plan.address6(slot);
      try {
        await runChecked(
          runner,
          ["ip", "-batch", "-"],
          `netns add ${name}\n` +
            `link add ${name} type veth peer name eth0 netns ${name}\n` +
            `link set ${name} master ${bridge} up\n` +
            // A pod reaching its own Service comes back through the port it left by (kubelet's hairpin-veth).
            `link set ${name} type bridge_slave hairpin on\n`,
        );
        await runChecked(
          runner,
          ["ip", "-n", name, "-batch", "-"],
          "link set lo up\n" +
            extraLoAddresses.map((a) => `addr add ${a} dev lo\n`).join("") +
            `addr add ${ip4}/${p4} dev eth0\n` +
            // nodad: a static address is usable at once instead of after ~1 s of duplicate detection.
            `addr add ${ip6}/${p6} dev eth0 nodad\n` +
            "link set eth0 up\n" +
            `route add default via ${plan.gateway4} dev eth0\n` +
            `route add default via ${plan.gateway6} dev eth0\n` +
            routeLines("replace", routes),
        );
        // As containerd does for pods: unprivileged users may bind ports < 1024 (httpbin on :80 as non-root)
        // and open ICMP echo sockets. Both are per-netns sysctls, so they cannot leak to the host.
        await runChecked(runner, [
          "nsenter",
          `--net=/run/netns/${name}`,
          "--",
          "sysctl",
          "-q",
          "-w",
          "net.ipv4.ip_unprivileged_port_start=0",
          "net.ipv4.ping_group_range=0 2147483647",
        ]);
      } catch (error) {
        // A netns of that name existed before (an earlier agent's): it is not ours to remove here, the caller
        // must first stop what runs in it.
        if (!/File exists/.test((error as Error).message)) await self.deleteSandbox(name);
        throw error;
      }
      return { name, ip4, ip6 };
    },
    async deleteSandbox(name) {
      const killed = new Set<number>();
      // A pod's PID 1 first: its exit kills the pod's processes while their parents (the join wrappers, outside
      // the pod's PID namespace) still live to reap them. Killed the other way round, the orphans go to the
      // host's init, and PID 1 lingers until that reaps them.
      const inits = (await self.pidsIn(name)).filter(namespaceInit);
      for (const pid of inits) kill(pid);
      for (let round = 0; round < 40 && inits.some(running); round++) {
        await new Promise((r) => setTimeout(r, 25));
      }
      for (let round = 0; round < 40; round++) {
        const pids = await self.pidsIn(name);
        if (pids.length === 0) break;
        for (const pid of pids) {
          killed.add(pid);
          kill(pid);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      // A pod's PID 1 leaves the netns list early in its exit but lives on until every process of its PID
      // namespace is reaped: wait for that, so that nothing of the pod outlives its teardown.
      for (let round = 0; round < 40 && [...killed].some(running); round++) {
        await new Promise((r) => setTimeout(r, 25));
      }
      // Deleting the host end removes both veth ends synchronously; netns teardown alone would be deferred to a
      // kernel work queue and leave the link visible for a while.
      const link = await runner.run(["ip", "link", "del", name]);
      if (link.code !== 0 && !notFound(link.stderr))
        throw new Error(`ip link del ${name}: ${link.stderr.trim()}`);
      const ns = await runner.run(["ip", "netns", "del", name]);
      if (ns.code !== 0 && !notFound(ns.stderr)) throw new Error(`ip netns del ${name}: ${ns.stderr.trim()}`);
    },
    async addRoutes(name, routes) {
      if (routes.length === 0) return;
      const r = await runner.run(["ip", "-n", name, "-batch", "-"], { stdin: routeLines("replace", routes) });
      if (r.code !== 0 && !notFound(r.stderr))
        await runChecked(runner, ["ip", "-n", name, "-batch", "-"], routeLines("replace", routes));
    },
    async removeRoutes(name, routes) {
      if (routes.length === 0) return;
      await runner.run(["ip", "-n", name, "-force", "-batch", "-"], { stdin: routeLines("del", routes) });
    },
    async listOurs() {
      // A netns deleted while `ip` walks the list makes it print "Peer netns reference is invalid" (and may
      // set its exit code): what it did list is still right, so only an empty answer counts as a failure.
      const listing = async (argv: string[]) => {
        const r = await runner.run(argv);
        if (r.code !== 0 && r.stdout.trim() === "" && !/Peer netns reference is invalid/.test(r.stderr)) {
          await runChecked(runner, argv);
        }
        return r.stdout;
      };
      const ns = await listing(["ip", "netns", "list"]);
      const links = await listing(["ip", "-o", "link", "show"]);
      const ours = (n: string) => n.startsWith(plan.config.namePrefix);
      return {
        netns: ns
          .split("\n")
          .map((l) => l.split(" ")[0] ?? "")
          .filter((n) => n && ours(n)),
        links: links
          .split("\n")
          .map((l) => (l.split(": ")[1] ?? "").split("@")[0] ?? "")
          .filter((n) => n && ours(n)),
      };
    },
    async pidsIn(name) {
      const r = await runner.run(["ip", "netns", "pids", name]);
      if (r.code !== 0) return [];
      return r.stdout
        .split("\n")
        .map((l) => Number(l.trim()))
        .filter((n) => Number.isInteger(n) && n > 0);
    },
  };
  return self;
}
