/**
 * The Node object and status this node reports, as a kubelet does (pure): Ready and the three pressure
 * conditions False with the kubelet's reasons, InternalIP and Hostname addresses, capacity = allocatable with
 * room for pods, nodeInfo, the kubelet API's port, and `declaredFeatures: [ExtendWebSocketsToKubelet]` (so
 * kube-apiserver proxies exec/attach WebSockets to this node unchanged).
 */

export interface NodeFacts {
  readonly nodeName: string;
  /** The node's address on the pod bridge (InternalIP; kube-apiserver reaches the kubelet API there). */
  readonly address: string;
  readonly kubeletPort: number;
  readonly kubeletVersion: string;
  readonly cpus: number;
  readonly memoryBytes: number;
  readonly maxPods: number;
  readonly machineID: string;
  readonly bootID: string;
  readonly kernelVersion: string;
  readonly osImage: string;
  readonly architecture: string;
}

export const DECLARED_FEATURES = ["ExtendWebSocketsToKubelet"] as const;

/** `kubernetes.io/arch` from Node's `process.arch`. */
export function goArch(nodeArch: string): string {
  return (
    ({ x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386", ppc64: "ppc64le", s390x: "s390x" } as const)[
      nodeArch as "x64"
    ] ?? nodeArch
  );
}

/** The Node to create when none exists (labels a kubelet sets on itself, allowed under NodeRestriction). */
export function nodeObject(facts: NodeFacts) {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name: facts.nodeName,
      labels: {
        "kubernetes.io/hostname": facts.nodeName,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": facts.architecture,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": facts.architecture,
      },
    },
    spec: {},
  };
}

const CONDITIONS = [
  ["MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"],
  ["DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"],
  ["PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"],
  ["Ready", "True", "KubeletReady", "kubelet is posting ready status"],
] as const;

/**
 * The full status at `now`; `since` is when this agent came up (each condition's lastTransitionTime: they do
 * not change while it runs).
 */
export function nodeStatus(facts: NodeFacts, now: Date, since: Date) {
  const t = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");
  const resources = {
    cpu: String(facts.cpus),
    memory: `${Math.floor(facts.memoryBytes / 1024)}Ki`,
    pods: String(facts.maxPods),
  };
  return {
    conditions: CONDITIONS.map(([type, status, reason, message]) => ({
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: t(now),
      lastTransitionTime: t(since),
    })),
    addresses: [
      { type: "InternalIP", address: facts.address },
      { type: "Hostname", address: facts.nodeName },
    ],
    capacity: resources,
    allocatable: resources,
    daemonEndpoints: { kubeletEndpoint: { Port: facts.kubeletPort } },
    nodeInfo: {
      machineID: facts.machineID,
      systemUUID: facts.machineID,
      bootID: facts.bootID,
      kernelVersion: facts.kernelVersion,
      osImage: facts.osImage,
      containerRuntimeVersion: "osm-local://1",
      kubeletVersion: facts.kubeletVersion,
      operatingSystem: "linux",
      architecture: facts.architecture,
    },
    declaredFeatures: [...DECLARED_FEATURES],
  };
}

/** A Lease's MicroTime: RFC 3339 with exactly six fractional digits (kube-apiserver parses no other form). */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}
