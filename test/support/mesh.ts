/** `osm mesh up`/`down` for suites that run the real daemon on a bridge, subnets and name prefix of their own. */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, portFree, until } from "./poll.ts";
import { kubectlEnv, run } from "./run.ts";

export interface MeshUp {
  /** The real control plane's ports when the suite runs on the `kubernetes` engine (see `testEngine`). */
  readonly kubernetes?: { readonly etcdPort: number; readonly kubeletPort: number };
  readonly stateDir: string;
  readonly kubeconfig: string;
  /** The API server's port on 127.0.0.1. */
  readonly port: number;
  readonly bridge: string;
  /** Of the pods' network namespaces and host veths. */
  readonly namePrefix: string;
  readonly subnet4: string;
  readonly subnet6: string;
  readonly lastSlot: number;
}

/** The arguments of `osm mesh up` (after `osm`). */
export function meshUpArgs(o: MeshUp): string[] {
  return [
    "mesh",
    "up",
    "--state-dir",
    o.stateDir,
    "--kubeconfig",
    o.kubeconfig,
    "--port",
    String(o.port),
    "--bridge",
    o.bridge,
    "--name-prefix",
    o.namePrefix,
    "--subnet4",
    o.subnet4,
    "--subnet6",
    o.subnet6,
    "--last-slot",
    String(o.lastSlot),
    ...(o.kubernetes
      ? [
          "--engine",
          "kubernetes",
          "--etcd-port",
          String(o.kubernetes.etcdPort),
          "--kubelet-port",
          String(o.kubernetes.kubeletPort),
        ]
      : []),
  ];
}

/**
 * The engine the e2e suites run the mesh on: `OSM_TEST_ENGINE=kubernetes` (scripts/run-tests.ts sets it for
 * the real-Kubernetes phase) runs the same suites on the real control plane.
 */
export function testEngine(env: NodeJS.ProcessEnv = process.env): "embedded" | "kubernetes" {
  return env["OSM_TEST_ENGINE"] === "kubernetes" ? "kubernetes" : "embedded";
}

/** Free ports for etcd (client, and the next one for peers) and the kubelet, on the real engine. */
async function kubernetesPorts(engine: "embedded" | "kubernetes"): Promise<MeshUp["kubernetes"]> {
  if (engine !== "kubernetes") return undefined;
  for (;;) {
    const etcdPort = await freePort();
    if (await portFree(etcdPort + 1)) return { etcdPort, kubeletPort: await freePort() };
  }
}

/** The arguments of `osm mesh down --purge` (after `osm`), also removing the context from `kubeconfig`. */
export function meshDownPurgeArgs(stateDir: string, kubeconfig: string): string[] {
  return ["mesh", "down", "--state-dir", stateDir, "--kubeconfig", kubeconfig, "--purge"];
}

export interface LocalMesh {
  /** `<dir>/state`. */
  readonly stateDir: string;
  /** `<dir>/kubeconfig`, where `up` adds its context. */
  readonly kubeconfig: string;
  /** For kubectl and bin/osm: this process's environment with kubectl isolated to `kubeconfig` under `dir`. */
  readonly env: NodeJS.ProcessEnv;
  /** `osm mesh up` on `net`, its API server on a port that was free a moment ago. */
  readonly upArgs: string[];
}

/**
 * A daemon's paths, environment and `up` arguments in the caller's temp `dir` (nothing is started or written),
 * on `engine` (default: the one the suites run on, `testEngine`).
 */
export async function localMesh(
  dir: string,
  net: Omit<MeshUp, "stateDir" | "kubeconfig" | "port">,
  engine: "embedded" | "kubernetes" = testEngine(),
): Promise<LocalMesh> {
  const stateDir = join(dir, "state");
  const kubeconfig = join(dir, "kubeconfig");
  const kubernetes = await kubernetesPorts(engine);
  return {
    stateDir,
    kubeconfig,
    env: { ...process.env, ...kubectlEnv(kubeconfig, dir) },
    upArgs: meshUpArgs({
      ...net,
      stateDir,
      kubeconfig,
      port: await freePort(),
      ...(kubernetes ? { kubernetes } : {}),
    }),
  };
}

/** Pod `name`'s IP once it is Running (kubectl with `env`); throws after `timeoutMs`. */
export function runningPodIP(env: NodeJS.ProcessEnv, name: string, timeoutMs = 180_000): Promise<string> {
  return until(
    `pod ${name} Running with an IP`,
    async () => {
      const jsonpath = "jsonpath={.status.phase} {.status.podIP}";
      const [phase, ip] = (await run("kubectl", ["get", "pod", name, "-o", jsonpath], { env })).stdout.split(
        " ",
      );
      return phase === "Running" && ip ? ip : undefined;
    },
    timeoutMs,
  );
}

/** The network namespaces and links on this host named `<prefix>…` or `bridge`: what a daemon of `prefix` left. */
export async function hostLeftovers(prefix: string, bridge: string): Promise<string[]> {
  const ns = await run("ip", ["netns", "list"]);
  const links = await run("ip", ["-o", "link", "show"]);
  return [...ns.stdout.split("\n"), ...links.stdout.split("\n").map((l) => l.split(": ")[1] ?? "")]
    .map((l) => (l.split(" ")[0] ?? "").split("@")[0] ?? "")
    .filter((n) => n.startsWith(prefix) || n === bridge);
}

/** How many `sleep ARGUMENT` processes run on the host (the churn pods' containers): a leak check. */
export function countSleepers(argument: string): number {
  const cmdline = `/usr/bin/sleep\u0000${argument}\u0000`;
  return readdirSync("/proc").filter((p) => {
    try {
      return /^\d+$/.test(p) && readFileSync(`/proc/${p}/cmdline`, "utf8") === cmdline;
    } catch {
      return false;
    }
  }).length;
}

/** `kubectl patch` (JSON merge) of the mesh's MeshConfig `osm-system/osm-mesh-config`, with `env`'s kubeconfig. */
export function patchMeshConfig(env: NodeJS.ProcessEnv, patch: Record<string, unknown>) {
  return run(
    "kubectl",
    [
      "patch",
      "meshconfig",
      "osm-mesh-config",
      "-n",
      "osm-system",
      "--type=merge",
      "-p",
      JSON.stringify(patch),
    ],
    { env },
  );
}
