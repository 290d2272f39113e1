/**
 * A two-namespace lab for interception tests: a client ("pod") namespace and a server namespace joined by a
 * veth, documentation addresses only. The server answers on every documentation address it routes as local
 * (AnyIP), so any destination of the case table is a real server. The pod runs sidecar listeners on 15001
 * and 15003 as uid 1500 and an app server (for inbound). Everything is torn down by PID and by name.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  ENVOY_INBOUND_LISTENER_PORT,
  ENVOY_OUTBOUND_LISTENER_PORT,
  ENVOY_UID,
} from "../../../src/constants.ts";

const PEER = fileURLToPath(new URL("./peer.ts", import.meta.url));

export const CLIENT_V4 = "192.0.2.253";
export const SERVER_V4 = "192.0.2.254";
export const CLIENT_V6 = "2001:db8:ffff::1";
export const SERVER_V6 = "2001:db8:ffff::2";

/** Ports the destination servers listen on (and the pod's app server, for inbound). */
export const SERVER_PORTS = [
  80, 443, 6379, 7000, 7001, 7014, 7015, 7070, 7072, 7099, 8000, 8001, 8015, 8080, 8081, 9090,
];

export interface Lab {
  readonly client: string;
  readonly server: string;
  readonly clientPath: string;
  readonly clientIf: string;
  /** Connects from the pod (uid 0) to each target; returns the answers. */
  connectFromPod(targets: readonly (readonly [string, number])[]): Promise<string[]>;
  /** Connects from the server namespace into the pod (inbound). */
  connectIntoPod(targets: readonly (readonly [string, number])[]): Promise<string[]>;
  /** Text of every nat and filter ruleset the three backends show, for before/after comparisons. */
  snapshot(): string;
  teardown(): void;
}

function sh(argv: string[]): string {
  return execFileSync(argv[0]!, argv.slice(1), { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function trySh(argv: string[]): void {
  try {
    sh(argv);
  } catch {
    // teardown of something already gone
  }
}

function startPeer(argv: string[]): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`peer did not start: ${argv.join(" ")}: ${err}`)), 5000);
    child.stdout!.on("data", (b: Buffer) => {
      out += b.toString();
      if (out.includes("ready")) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.stderr!.on("data", (b: Buffer) => {
      err += b.toString();
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`peer exited (${code}): ${argv.join(" ")}: ${err}`));
    });
  });
}

function runConnect(netns: string, targets: readonly (readonly [string, number])[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      "ip",
      ["netns", "exec", netns, process.execPath, PEER, "connect", JSON.stringify(targets)],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
    });
    child.stderr.on("data", (b: Buffer) => {
      err += b.toString();
    });
    child.on("close", (code) => {
      if (code !== 0) reject(new Error(`connect failed (${code}): ${err}`));
      else resolve(JSON.parse(out) as string[]);
    });
  });
}

/** Creates the lab; `id` keeps concurrently running test files apart (names ≤ 15 chars). */
export async function createLab(id: string): Promise<Lab> {
  const client = `osmt-ic-c${id}`;
  const server = `osmt-ic-s${id}`;
  const clientIf = `osmt-ic-c${id}v`;
  const serverIf = `osmt-ic-s${id}v`;
  const children: ChildProcess[] = [];
  const teardown = () => {
    for (const c of children) if (c.pid !== undefined && c.exitCode === null) trySh(["kill", String(c.pid)]);
    trySh(["ip", "netns", "del", client]);
    trySh(["ip", "netns", "del", server]);
  };
  teardown();
  try {
    sh(["ip", "netns", "add", client]);
    sh(["ip", "netns", "add", server]);
    sh([
      "ip",
      "link",
      "add",
      clientIf,
      "netns",
      client,
      "type",
      "veth",
      "peer",
      "name",
      serverIf,
      "netns",
      server,
    ]);
    for (const [ns, dev, v4, v6] of [
      [client, clientIf, CLIENT_V4, CLIENT_V6],
      [server, serverIf, SERVER_V4, SERVER_V6],
    ] as const) {
      sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
      sh(["ip", "-n", ns, "addr", "add", `${v4}/30`, "dev", dev]);
      sh(["ip", "-n", ns, "addr", "add", `${v6}/64`, "dev", dev, "nodad"]);
      sh(["ip", "-n", ns, "link", "set", dev, "up"]);
    }
    sh(["ip", "-n", client, "route", "add", "default", "via", SERVER_V4]);
    sh(["ip", "-n", client, "-6", "route", "add", "default", "via", SERVER_V6]);
    // AnyIP: the server owns every documentation address the cases use.
    for (const prefix of ["203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/25"]) {
      sh(["ip", "-n", server, "route", "add", "local", prefix, "dev", "lo"]);
    }
    sh(["ip", "-n", server, "-6", "route", "add", "local", "2001:db8::/40", "dev", "lo"]);
    sh(["ip", "-n", server, "route", "add", "default", "via", CLIENT_V4]);
    sh(["ip", "-n", server, "-6", "route", "add", "default", "via", CLIENT_V6]);
    const ports = SERVER_PORTS.map(String);
    const node = process.execPath;
    children.push(await startPeer(["ip", "netns", "exec", server, node, PEER, "serve", "direct", ...ports]));
    children.push(await startPeer(["ip", "netns", "exec", client, node, PEER, "serve", "app", ...ports]));
    const uid = String(ENVOY_UID);
    children.push(
      await startPeer([
        "ip",
        "netns",
        "exec",
        client,
        "setpriv",
        `--reuid=${uid}`,
        `--regid=${uid}`,
        "--clear-groups",
        node,
        PEER,
        "serve",
        "sidecar",
        String(ENVOY_OUTBOUND_LISTENER_PORT),
        String(ENVOY_INBOUND_LISTENER_PORT),
      ]),
    );
  } catch (error) {
    teardown();
    throw error;
  }
  return {
    client,
    server,
    clientPath: `/var/run/netns/${client}`,
    clientIf,
    connectFromPod: (targets) => runConnect(client, targets),
    connectIntoPod: (targets) => runConnect(server, targets),
    snapshot: () =>
      [
        ["iptables-legacy-save", "-t", "nat"],
        ["ip6tables-legacy-save", "-t", "nat"],
        ["iptables-nft-save", "-t", "nat"],
        ["ip6tables-nft-save", "-t", "nat"],
        ["iptables-legacy-save", "-t", "filter"],
        ["ip6tables-legacy-save", "-t", "filter"],
        ["iptables-nft-save", "-t", "filter"],
        ["ip6tables-nft-save", "-t", "filter"],
        ["nft", "list", "ruleset"],
      ]
        .map((argv) =>
          sh(["ip", "netns", "exec", client, ...argv])
            .split("\n")
            .filter((l) => !l.startsWith("#"))
            .map((l) => l.replace(/\[\d+:\d+\]$/, "[0:0]")) // legacy chain counters move with traffic
            .join("\n"),
        )
        .join("\n"),
    teardown,
  };
}

/** What a peer's answer means, in explain's vocabulary. */
export function answerToVerdict(answer: string): string {
  if (answer.startsWith("direct ") || answer.startsWith("app ")) return "direct";
  if (answer === `sidecar ${ENVOY_OUTBOUND_LISTENER_PORT}`) return "outbound-sidecar";
  if (answer === `sidecar ${ENVOY_INBOUND_LISTENER_PORT}`) return "inbound-sidecar";
  return answer;
}
