/**
 * Finds a pod's network namespace on a node this process did not set up (the osm-node DaemonSet), whatever the
 * container runtime: every process's `/proc/<pid>/ns/net` is grouped by namespace; the namespaces whose local
 * addresses (`/proc/<pid>/net/fib_trie`, `…/if_inet6`: no process started) include the pod's `status.podIP`
 * are confirmed with `ip -j addr` inside them, and the one holding it on a non-loopback interface is the
 * pod's. None: the pod is not there (yet); several: ambiguous, refused (fail closed: never the wrong pod's
 * rules). The namespace is then entered as `/proc/<lowest pid>/ns/net` (a pod's first process, its sandbox,
 * lives longest) and remembered while that process still has it. The resolv.conf is the one the pod's
 * containers see, `/proc/<pid>/root/etc/resolv.conf` of its first process that has one (a pause container's
 * image has none), which is what osm-init read. Needs host PIDs (`hostPID: true`, or the host's /proc at
 * `proc`), CAP_SYS_PTRACE to read other users' `ns/net` links and roots, CAP_SYS_ADMIN to enter.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import type { V1Pod } from "@kubernetes/client-node";
import type { CommandRunner } from "../../edge/command-runner.ts";
import { createProcessRunner } from "../../edge/command-runner.ts";
import { formatIp, tryParseIp } from "../../net/ip.ts";
import type { InterceptionTarget, PodLocator } from "./live-interception.ts";

/** One network namespace seen in /proc: its id (`net:[inode]`), its processes (ascending) and local addresses. */
export interface NetnsGroup {
  readonly id: string;
  readonly pids: readonly number[];
  readonly localAddresses: ReadonlySet<string>;
}

/** An interface inside a namespace, as `ip -j addr` lists it. */
export interface NetnsInterface {
  readonly name: string;
  readonly loopback: boolean;
  readonly addresses: readonly string[];
}

/** Canonical text of an address (RFC 5952 for IPv6), or undefined when it is not one. Pure. */
export function canonicalIp(text: string): string | undefined {
  const r = tryParseIp(text);
  return r.ok ? r.value.toString() : undefined;
}

/** The local IPv4 addresses of a `/proc/<pid>/net/fib_trie` (its `/32 host LOCAL` leaves). Pure. */
export function parseFibTrieLocal(text: string): string[] {
  const out = new Set<string>();
  let last = "";
  for (const line of text.split("\n")) {
    const leaf = /^\s*\|-- (\d+\.\d+\.\d+\.\d+)\s*$/.exec(line);
    if (leaf) last = leaf[1]!;
    else if (/^\s*\/32 host LOCAL\s*$/.test(line) && last) out.add(last);
  }
  return [...out];
}

/** The IPv6 addresses of a `/proc/<pid>/net/if_inet6` (32 hex digits, then index, prefix, scope, flags, name). Pure. */
export function parseIfInet6(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const hex = /^([0-9a-f]{32})\s/.exec(line)?.[1];
    if (hex) out.push(formatIp(6, BigInt(`0x${hex}`)));
  }
  return out;
}

/** `ip -j addr show` → interfaces (name, LOOPBACK flag, canonical addresses). Pure; throws on bad JSON. */
export function parseIpAddrJson(json: string): NetnsInterface[] {
  const links = JSON.parse(json) as {
    ifname?: string;
    flags?: string[];
    link_type?: string;
    addr_info?: { local?: string }[];
  }[];
  return links.map((l) => ({
    name: l.ifname ?? "",
    loopback: (l.flags ?? []).includes("LOOPBACK") || l.link_type === "loopback",
    addresses: (l.addr_info ?? []).flatMap((a) => {
      const ip = a.local === undefined ? undefined : canonicalIp(a.local);
      return ip ? [ip] : [];
    }),
  }));
}

/** The groups that may hold `podIP` (a local address of theirs), before the interface check. Pure. */
export function candidateGroups(groups: readonly NetnsGroup[], podIP: string): NetnsGroup[] {
  const ip = canonicalIp(podIP);
  return ip === undefined ? [] : groups.filter((g) => g.localAddresses.has(ip));
}

/**
 * The one namespace holding `podIP` on a non-loopback interface, among the candidates with their interfaces.
 * Undefined when none does; throws when several do (a pod's address must name one namespace). Pure.
 */
export function selectPodNamespace(
  candidates: readonly { group: NetnsGroup; interfaces: readonly NetnsInterface[] }[],
  podIP: string,
): NetnsGroup | undefined {
  const ip = canonicalIp(podIP);
  const holding = candidates.filter(({ interfaces }) =>
    interfaces.some((i) => !i.loopback && i.addresses.includes(ip ?? "")),
  );
  if (holding.length > 1) {
    throw new Error(
      `pod IP ${podIP} is on a non-loopback interface in ${holding.length} network namespaces (${holding.map((h) => `${h.group.id} of pid ${h.group.pids[0]}`).join(", ")}); refusing to guess`,
    );
  }
  return holding[0]?.group;
}

/**
 * Whether the DaemonSet may bring this pod's rules up to date: running, its init containers (osm-init) done,
 * not on its way out, with an address, and in a network namespace of its own (a `hostNetwork` pod is never
 * intercepted). Pure.
 */
export function podReadyForUpdate(pod: V1Pod): boolean {
  const status = pod.status;
  return (
    status?.phase === "Running" &&
    !pod.metadata?.deletionTimestamp &&
    pod.spec?.hostNetwork !== true &&
    !!status.podIP &&
    (status.conditions ?? []).some((c) => c.type === "Initialized" && c.status === "True")
  );
}

export interface ProcNetnsLocatorOptions {
  /** Where the host's /proc is (default `/proc`, with `hostPID: true`). */
  readonly proc?: string;
  /** Runs `ip -j addr show` inside a namespace (path). */
  readonly runnerFor?: (netns: string) => CommandRunner;
}

const read = (path: string): string | undefined => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined; // the process is gone, or not ours to read
  }
};

/** The DaemonSet's `PodLocator`: the /proc scan above, one scan shared by the pods looking at once. */
export class ProcNetnsLocator implements PodLocator {
  readonly #proc: string;
  readonly #runnerFor: (netns: string) => CommandRunner;
  readonly #known = new Map<string, { pid: number; id: string; target: InterceptionTarget }>();
  #scan: Promise<NetnsGroup[]> | undefined;

  constructor(options: ProcNetnsLocatorOptions = {}) {
    this.#proc = options.proc ?? "/proc";
    this.#runnerFor = options.runnerFor ?? ((netns) => createProcessRunner({ netns }));
  }

  async locate(pod: V1Pod): Promise<InterceptionTarget | undefined> {
    if (!podReadyForUpdate(pod)) return undefined;
    const uid = pod.metadata?.uid ?? "";
    const podIPs = (pod.status?.podIPs ?? []).map((p) => p.ip ?? "").filter((ip) => ip !== "");
    const podIP = pod.status?.podIP ?? "";
    const known = this.#known.get(uid);
    if (known && this.#netnsOf(known.pid) === known.id) return known.target;
    this.#known.delete(uid);
    const groups = await this.#groups();
    const candidates = await Promise.all(
      candidateGroups(groups, podIP).map(async (group) => ({
        group,
        interfaces: await this.#interfaces(group.pids[0]!),
      })),
    );
    const group = selectPodNamespace(candidates, podIP);
    if (!group) return undefined;
    const pid = group.pids[0]!;
    const resolvConf = group.pids
      .map((p) => read(`${this.#proc}/${p}/root/etc/resolv.conf`))
      .find((t) => t !== undefined);
    if (resolvConf === undefined) {
      throw new Error(
        `no process in the network namespace of ${podIP} (${group.id}) shows an /etc/resolv.conf: cannot tell the pod's DNS servers`,
      );
    }
    const target = {
      netns: `${this.#proc}/${pid}/ns/net`,
      podIPs: podIPs.length > 0 ? podIPs : [podIP],
      resolvConf,
    };
    this.#known.set(uid, { pid, id: group.id, target });
    return target;
  }

  forget(uid: string): void {
    this.#known.delete(uid);
  }

  #netnsOf(pid: number): string | undefined {
    try {
      return readlinkSync(`${this.#proc}/${pid}/ns/net`);
    } catch {
      return undefined;
    }
  }

  async #interfaces(pid: number): Promise<NetnsInterface[]> {
    const r = await this.#runnerFor(`${this.#proc}/${pid}/ns/net`).run(["ip", "-j", "addr", "show"]);
    if (r.code !== 0)
      throw new Error(`ip -j addr show in the netns of pid ${pid}: ${r.error ?? r.stderr.trim()}`);
    return parseIpAddrJson(r.stdout);
  }

  /** Every network namespace with processes now (one scan for all callers in the meantime). */
  #groups(): Promise<NetnsGroup[]> {
    this.#scan ??= Promise.resolve()
      .then(() => this.#scanNow())
      .finally(() => {
        this.#scan = undefined;
      });
    return this.#scan;
  }

  #scanNow(): NetnsGroup[] {
    const pidsOf = new Map<string, number[]>();
    const pids = readdirSync(this.#proc)
      .filter((name) => /^\d+$/.test(name))
      .map(Number)
      .sort((a, b) => a - b);
    for (const pid of pids) {
      const id = this.#netnsOf(pid);
      if (id === undefined) continue;
      const list = pidsOf.get(id);
      if (list) list.push(pid);
      else pidsOf.set(id, [pid]);
    }
    const groups: NetnsGroup[] = [];
    for (const [id, members] of pidsOf) {
      const first = members[0]!;
      const v4 = parseFibTrieLocal(read(`${this.#proc}/${first}/net/fib_trie`) ?? "");
      const v6 = parseIfInet6(read(`${this.#proc}/${first}/net/if_inet6`) ?? "");
      groups.push({ id, pids: members, localAddresses: new Set([...v4, ...v6]) });
    }
    return groups;
  }
}
