/**
 * The node's registration, as a kubelet keeps it: creates its Node (when missing), writes its status (Ready,
 * addresses, capacity, the kubelet API's port, declared features) at start and every `statusIntervalMs`, and
 * renews its Lease `kube-node-lease/<node>` every `renewIntervalMs`, so the node lifecycle controller never
 * marks it NotReady. Only its own Node and Lease are touched: it works under the Node authorizer and
 * NodeRestriction. An API server that does not serve `coordination.k8s.io` (the embedded one) gets no Lease.
 */
import { readFileSync } from "node:fs";
import { arch, cpus, release, totalmem } from "node:os";
import { CoordinationV1Api, CoreV1Api, type KubeConfig, VersionApi } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { apiErrorCode } from "../../../edge/kube-client.ts";
import { goArch, microTime, type NodeFacts, nodeObject, nodeStatus } from "./node-status.ts";

export const NODE_LEASE_NAMESPACE = "kube-node-lease";

export interface NodeRegistrationOptions {
  readonly kubeConfig: KubeConfig;
  readonly nodeName: string;
  /** InternalIP: where kube-apiserver reaches the kubelet API. */
  readonly address: string;
  readonly kubeletPort: number;
  readonly logger: Logger;
  /** Default: the API server's own version (a kubelet is never newer than its API server). */
  readonly kubeletVersion?: string;
  /** Default 110, the kubelet's. */
  readonly maxPods?: number;
  /** Default 40 s, the kubelet's. */
  readonly leaseDurationSeconds?: number;
  /** Default 10 s (a quarter of the lease duration, as the kubelet). */
  readonly renewIntervalMs?: number;
  /** Default 60 s. */
  readonly statusIntervalMs?: number;
}

export interface NodeRegistration {
  /** Whether the API server serves Leases (else only the Node status is kept fresh). */
  readonly leases: boolean;
  stop(): Promise<void>;
}

function readTrimmed(path: string, fallback: string): string {
  try {
    return readFileSync(path, "utf8").trim() || fallback;
  } catch {
    return fallback;
  }
}

function osImage(): string {
  const text = readTrimmed("/etc/os-release", "");
  const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(text);
  return m?.[1] ?? "Linux";
}

/** Registers the node and keeps it fresh; throws when the first registration fails (after a few tries). */
export async function startNodeRegistration(options: NodeRegistrationOptions): Promise<NodeRegistration> {
  const { kubeConfig, nodeName, logger } = options;
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const coordination = kubeConfig.makeApiClient(CoordinationV1Api);
  const kubeletVersion =
    options.kubeletVersion ?? (await kubeConfig.makeApiClient(VersionApi).getCode()).gitVersion;
  const facts: NodeFacts = {
    nodeName,
    address: options.address,
    kubeletPort: options.kubeletPort,
    kubeletVersion,
    cpus: cpus().length,
    memoryBytes: totalmem(),
    maxPods: options.maxPods ?? 110,
    machineID: readTrimmed("/etc/machine-id", nodeName),
    bootID: readTrimmed("/proc/sys/kernel/random/boot_id", ""),
    kernelVersion: release(),
    osImage: osImage(),
    architecture: goArch(arch()),
  };
  const since = new Date();
  const leaseDuration = options.leaseDurationSeconds ?? 40;
  let stopped = false;

  const ensureNode = async (): Promise<string> => {
    try {
      return (await core.readNode({ name: nodeName })).metadata?.uid ?? "";
    } catch (error) {
      if (apiErrorCode(error) !== 404) throw error;
    }
    try {
      const created = await core.createNode({ body: nodeObject(facts) });
      logger.info({ node: nodeName }, "node registered");
      return created.metadata?.uid ?? "";
    } catch (error) {
      if (apiErrorCode(error) !== 409) throw error;
      return (await core.readNode({ name: nodeName })).metadata?.uid ?? "";
    }
  };
  const writeStatus = async (): Promise<void> => {
    try {
      await core.patchNodeStatus({
        name: nodeName,
        body: [{ op: "add", path: "/status", value: nodeStatus(facts, new Date(), since) }],
      });
    } catch (error) {
      // Deleted from under us: register again, as a kubelet does.
      if (apiErrorCode(error) !== 404) throw error;
      await ensureNode();
      await writeStatus();
    }
  };
  const renewLease = async (nodeUid: string): Promise<void> => {
    const renew = () =>
      coordination.patchNamespacedLease({
        name: nodeName,
        namespace: NODE_LEASE_NAMESPACE,
        body: [
          { op: "add", path: "/spec/holderIdentity", value: nodeName },
          { op: "add", path: "/spec/leaseDurationSeconds", value: leaseDuration },
          { op: "add", path: "/spec/renewTime", value: microTime(new Date()) },
        ],
      });
    try {
      await renew();
    } catch (error) {
      if (apiErrorCode(error) !== 404) throw error;
      // No Lease yet: created without renewTime (client-node would write it with milliseconds, which
      // kube-apiserver refuses for a MicroTime), then renewed.
      await coordination
        .createNamespacedLease({
          namespace: NODE_LEASE_NAMESPACE,
          body: {
            metadata: {
              name: nodeName,
              namespace: NODE_LEASE_NAMESPACE,
              ownerReferences: [{ apiVersion: "v1", kind: "Node", name: nodeName, uid: nodeUid }],
            },
            spec: { holderIdentity: nodeName, leaseDurationSeconds: leaseDuration },
          },
        })
        .catch((e: unknown) => {
          if (apiErrorCode(e) !== 409) throw e;
        });
      await renew();
    }
  };
  const servesLeases = async (): Promise<boolean> => {
    try {
      await coordination.getAPIResources();
      return true;
    } catch (error) {
      if (apiErrorCode(error) === 404) return false;
      throw error;
    }
  };

  let nodeUid = "";
  let leases = false;
  for (let attempt = 1; ; attempt++) {
    try {
      nodeUid = await ensureNode();
      await writeStatus();
      leases = await servesLeases();
      if (leases) await renewLease(nodeUid);
      break;
    } catch (error) {
      if (attempt >= 10) throw error;
      logger.debug({ err: error, attempt }, "node registration failed; retrying");
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
  if (!leases) logger.info("the API server serves no coordination.k8s.io Leases: node status only");

  const every = (ms: number, what: string, fn: () => Promise<void>) => {
    let running = false;
    const timer = setInterval(() => {
      if (running || stopped) return;
      running = true;
      fn()
        .catch((error: unknown) => logger.warn({ err: error }, `${what} failed; retrying at the next tick`))
        .finally(() => {
          running = false;
        });
    }, ms);
    timer.unref();
    return timer;
  };
  const timers = [
    every(options.statusIntervalMs ?? 60_000, "node status update", async () => {
      nodeUid = await ensureNode();
      await writeStatus();
    }),
    ...(leases
      ? [every(options.renewIntervalMs ?? 10_000, "node lease renewal", () => renewLease(nodeUid))]
      : []),
  ];
  logger.info({ node: nodeName, leases }, "node ready");
  return {
    leases,
    async stop() {
      stopped = true;
      for (const t of timers) clearInterval(t);
    },
  };
}
