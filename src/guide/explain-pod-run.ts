/**
 * `osm explain pod/NAME -n NS IP:PORT`, the I/O part: reads the pod, the MeshConfig and the mesh's Services
 * through the Kubernetes API, finds the pod's network namespace when it is on this host (the embedded
 * default) and reads its rules back, then asks interception's pure `explain` where the connection goes.
 */
import { readFileSync } from "node:fs";
import { CoreV1Api, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import {
  buildEffectivePolicy,
  evaluateStaleness,
  rebuildRecordedPolicy,
  recordedOn,
  recordPolicy,
  unrecordedReason,
} from "../config/index.ts";
import {
  ANNOTATION_INTERCEPTION_POLICY_HASH,
  ANNOTATION_INTERCEPTION_UPDATED_LIVE,
  DEFAULT_OSM_NAMESPACE,
  ENVOY_UNIQUE_ID_LABEL_NAME,
  LABEL_MONITORED_BY,
} from "../constants.ts";
import { type CommandRunner, createProcessRunner } from "../edge/command-runner.ts";
import { apiErrorMessage, loadKubeConfig } from "../edge/kube-client.ts";
import { egressPolicyFor } from "../egress/rules.ts";
import type { Egress } from "../egress/schema.ts";
import { ErrorCode, MeshError } from "../errors.ts";
import { proxyUidPaths } from "../injector/index.ts";
import {
  buildPlan,
  detectBackend,
  type ExplainProtocol,
  explain,
  NFT_TABLE,
  parseResolvConf,
  verifyInterception,
} from "../interception/index.ts";
import { allowingTrafficTargets, objectName, podIdentity } from "../smi/access.ts";
import type { HttpRequestFacts } from "../smi/http-match.ts";
import type { HttpRouteGroup } from "../smi/http-route-group.ts";
import type { TrafficTarget } from "../smi/schema.ts";
import { EGRESS, HTTP_ROUTE_GROUP, TRAFFIC_TARGET } from "../smi/validate.ts";
import { explainInboundPod } from "./explain-inbound-run.ts";
import {
  type Destination,
  type EgressContext,
  formatPodExplanation,
  type MeshAccess,
  type PodExplainReport,
  parseDestination,
  sidecarOutcome,
} from "./explain-pod.ts";
import { listPolicyObjects } from "./policy-objects.ts";
import { readMeshConfig } from "./proxy-status.ts";
import { restartCommand } from "./restart-command.ts";

export interface ExplainPodOptions {
  readonly namespace: string;
  readonly pod: string;
  readonly destination: string;
  /** tcp (default), udp or icmp. */
  readonly protocol?: ExplainProtocol;
  readonly osmNamespace?: string;
  /** The TLS server name or HTTP Host the pod's client sends (for http/https Egress ports). */
  readonly host?: string;
  /** An http request's method and path (HTTPRouteGroup matches of an http Egress). */
  readonly request?: { readonly method?: string; readonly path?: string };
}

export interface ExplainPodDeps {
  /** Runs host commands (`ip netns`, and the read-back inside the pod's netns). */
  readonly hostRunner: CommandRunner;
  readonly netnsRunner: (netnsPath: string) => CommandRunner;
  readonly isRoot: boolean;
  /** The host's resolv.conf text: the pod's resolvers when its own cannot be read (not root, not on this node). */
  readonly resolvConf: () => string;
  /** The resolv.conf a process of `netns` sees (its own mount namespace), or undefined. */
  readonly podResolvConf: (netns: string) => Promise<string | undefined>;
}

export const defaultExplainPodDeps = (): ExplainPodDeps => ({
  hostRunner: createProcessRunner(),
  netnsRunner: (netns) => createProcessRunner({ netns }),
  isRoot: process.getuid?.() === 0,
  resolvConf: () => {
    try {
      return readFileSync("/etc/resolv.conf", "utf8");
    } catch {
      return "";
    }
  },
  podResolvConf: async (netns) => {
    const pids = await createProcessRunner().run(["ip", "netns", "pids", netns]);
    for (const pid of pids.stdout.split("\n").filter((p) => /^\d+$/.test(p))) {
      try {
        return readFileSync(`/proc/${pid}/root/etc/resolv.conf`, "utf8");
      } catch {
        // That process is gone or has no such file: try the next.
      }
    }
    return undefined;
  },
});

/** `pod/NAME` (kubectl's TYPE/NAME form; `pods/` and `po/` too) → NAME, else undefined. */
export function podTargetName(target: string): string | undefined {
  const match = /^(?:pod|pods|po)\/(.+)$/.exec(target);
  return match?.[1];
}

/** The network namespace on this host whose eth0 holds the pod's IP (the embedded runtime), if any. */
async function findPodNetns(runner: CommandRunner, podIp: string): Promise<string | undefined> {
  const list = await runner.run(["ip", "netns", "list"]);
  if (list.code !== 0) return undefined;
  const names = list.stdout
    .split("\n")
    .map((line) => line.trim().split(/\s+/)[0] ?? "")
    .filter((name) => name !== "");
  for (const name of names) {
    const addr = await runner.run(["ip", "-n", name, "-o", "addr", "show", "dev", "eth0"]);
    if (addr.code === 0 && addr.stdout.split(/\s+/).some((word) => word.split("/")[0] === podIp)) return name;
  }
  return undefined;
}

/**
 * A Service (ClusterIP and port) or a meshed pod that answers on the destination, in a monitored namespace,
 * with the service accounts it runs as (those of the pods the Service selects).
 */
async function findMeshService(
  core: CoreV1Api,
  destination: Destination,
): Promise<{ name: string; identities: string[] } | undefined> {
  const address = destination.ip.toString();
  const monitored = new Set(
    (await core.listNamespace({ labelSelector: LABEL_MONITORED_BY })).items.map(
      (ns) => ns.metadata?.name ?? "",
    ),
  );
  for (const svc of (await core.listServiceForAllNamespaces()).items) {
    if (!monitored.has(svc.metadata?.namespace ?? "")) continue;
    const ips = svc.spec?.clusterIPs ?? (svc.spec?.clusterIP ? [svc.spec.clusterIP] : []);
    if (!ips.includes(address)) continue;
    if ((svc.spec?.ports ?? []).some((p) => p.port === destination.port)) {
      const namespace = svc.metadata?.namespace ?? "";
      const selector = Object.entries(svc.spec?.selector ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(",");
      const selected =
        selector === "" ? [] : (await core.listNamespacedPod({ namespace, labelSelector: selector })).items;
      return {
        name: `Service ${namespace}/${svc.metadata?.name}:${destination.port}`,
        identities: [...new Set(selected.map(podIdentity))].sort(),
      };
    }
  }
  const pods = await core.listPodForAllNamespaces({ labelSelector: ENVOY_UNIQUE_ID_LABEL_NAME });
  for (const pod of pods.items) {
    const ips = (pod.status?.podIPs ?? []).map((p) => p.ip);
    if (monitored.has(pod.metadata?.namespace ?? "") && ips.includes(address)) {
      return { name: `pod ${pod.metadata?.namespace}/${pod.metadata?.name}`, identities: [podIdentity(pod)] };
    }
  }
  return undefined;
}

/** The valid TrafficTargets of the cluster. */
export async function listTrafficTargets(kc: KubeConfig): Promise<TrafficTarget[]> {
  return (await listPolicyObjects(kc, TRAFFIC_TARGET)) as TrafficTarget[];
}

/** With egress disabled: the pod's Egress rules, as the controller computes them for its sidecar. */
async function podEgress(
  kc: KubeConfig,
  pod: V1Pod,
  asked: Pick<ExplainPodOptions, "host" | "request">,
): Promise<EgressContext> {
  const [namespace = "", name = ""] = podIdentity(pod).split("/");
  const policy = egressPolicyFor(
    { namespace, name },
    {
      enableEgress: false,
      egresses: (await listPolicyObjects(kc, EGRESS)) as Egress[],
      httpRouteGroups: (await listPolicyObjects(kc, HTTP_ROUTE_GROUP)) as HttpRouteGroup[],
    },
  )!;
  return {
    policy,
    ...(asked.host === undefined ? {} : { host: asked.host }),
    ...(asked.request === undefined ? {} : { request: asked.request }),
  };
}

/** With permissive mode off: which TrafficTarget, if any, lets `pod` reach the mesh destination. */
async function meshAccess(
  kc: KubeConfig,
  pod: V1Pod,
  meshService: { name: string; identities: string[] },
): Promise<MeshAccess> {
  const targets = await listTrafficTargets(kc);
  const source = podIdentity(pod);
  const names = meshService.identities.flatMap((d) =>
    allowingTrafficTargets(targets, source, d).map(objectName),
  );
  return {
    meshService: meshService.name,
    source,
    destinations: meshService.identities,
    trafficTarget: names.sort()[0],
  };
}

/** Builds the report for one pod and destination (see formatPodExplanation). */
export async function explainPodReport(
  kc: KubeConfig,
  options: ExplainPodOptions,
  deps: ExplainPodDeps = defaultExplainPodDeps(),
): Promise<PodExplainReport> {
  const destination = parseDestination(options.destination);
  const core = kc.makeApiClient(CoreV1Api);
  let pod: V1Pod;
  try {
    pod = await core.readNamespacedPod({ namespace: options.namespace, name: options.pod });
  } catch (error) {
    throw new MeshError(ErrorCode.NotFound, apiErrorMessage(error), { cause: error });
  }
  const annotations = pod.metadata?.annotations ?? {};
  const recorded = recordedOn(annotations);
  if (recorded === undefined) {
    throw new MeshError(
      ErrorCode.NotFound,
      `pod ${options.namespace}/${options.pod} has no recorded interception policy (annotation ${ANNOTATION_INTERCEPTION_POLICY_HASH}): it was not injected by osm-ts`,
      { hint: "add its namespace with `osm namespace add`, then restart the pod" },
    );
  }
  const meshConfig = await readMeshConfig(kc, options.osmNamespace ?? DEFAULT_OSM_NAMESPACE);
  const namespace = await core.readNamespace({ name: options.namespace });
  const nsAnnotations = namespace.metadata?.annotations ?? {};
  const current = buildEffectivePolicy(meshConfig, {
    podAnnotations: annotations,
    namespaceAnnotations: nsAnnotations,
  });
  const verdict = evaluateStaleness(annotations, () => recordPolicy(current));
  const staleDiff = verdict?.state === "stale" ? verdict.diff : [];
  const owner =
    pod.metadata?.ownerReferences?.find((r) => r.controller) ?? pod.metadata?.ownerReferences?.[0];
  const restart = restartCommand(
    options.namespace,
    options.pod,
    owner ? { kind: owner.kind, name: owner.name } : undefined,
    pod.metadata?.labels?.["pod-template-hash"],
  );
  let policy = current;
  if (staleDiff.length > 0) {
    if (recorded.text === undefined) {
      throw new MeshError(
        ErrorCode.Conflict,
        `pod ${options.namespace}/${options.pod} is stale (the current MeshConfig gives another policy) and ${unrecordedReason(recorded)}, so its rules cannot be explained`,
        { hint: `restart it to run the current policy: ${restart}` },
      );
    }
    policy = rebuildRecordedPolicy(recorded.text, annotations, nsAnnotations, meshConfig);
  }
  // IPv6 always (osm-init covers it in every pod that has it); the resolvers the egress filter lets DNS reach
  // are the pod's own (osm-init read its /etc/resolv.conf), the host's until the pod's can be read.
  const planWith = (resolvConf: string) =>
    buildPlan(policy, { ipv6: true, resolvers: parseResolvConf(resolvConf) });
  let plan = planWith(deps.resolvConf());

  let kernel: PodExplainReport["kernel"] = { checked: false, reason: "not root" };
  let backend: "iptables" | "nftables" = "iptables";
  const podIp = pod.status?.podIP;
  if (deps.isRoot && podIp) {
    try {
      const netns = await findPodNetns(deps.hostRunner, podIp);
      if (netns === undefined) {
        kernel = { checked: false, reason: `no network namespace on this host holds the pod's IP ${podIp}` };
      } else {
        const podResolvConf = await deps.podResolvConf(netns);
        if (podResolvConf !== undefined) plan = planWith(podResolvConf);
        const runner = deps.netnsRunner(`/run/netns/${netns}`);
        // The rules may come from either backend (the init script picks at run time, or OSM's iptables text):
        // our nft table decides; without it, the iptables variant holding the nat rules.
        const ours = await runner.run(["nft", "list", "table", "inet", NFT_TABLE]);
        const detection =
          ours.code === 0 ? { variant: "nftables" as const } : await detectBackend(runner, "iptables");
        const differences = await verifyInterception(plan, { runner, variant: detection.variant, podIp });
        backend = detection.variant === "nftables" ? "nftables" : "iptables";
        kernel = { checked: true, netns, variant: detection.variant, differences };
      }
    } catch (error) {
      // Reading the kernel is a cross-check: when it cannot be done, the verdict from the plan still stands.
      kernel = { checked: false, reason: `reading the rules failed: ${apiErrorMessage(error)}` };
    }
  }
  const protocol = options.protocol ?? "tcp";
  const explanation = explain(
    plan,
    { destination: destination.ip, port: destination.port, protocol },
    backend,
  );
  const meshService =
    explanation.verdict === "outbound-sidecar" ? await findMeshService(core, destination) : undefined;
  const access =
    meshService === undefined || meshConfig.spec.traffic.enablePermissiveTrafficPolicyMode
      ? undefined
      : await meshAccess(kc, pod, meshService);
  return {
    namespace: options.namespace,
    pod: options.pod,
    destination,
    protocol,
    explanation,
    outcome: sidecarOutcome(
      destination,
      meshService?.name,
      meshConfig.spec.traffic.enableEgress,
      access,
      explanation.verdict === "outbound-sidecar" && !meshConfig.spec.traffic.enableEgress
        ? await podEgress(kc, pod, options)
        : undefined,
    ),
    ...(access === undefined ? {} : { access }),
    proxyUidPaths: meshConfig.spec.traffic.enableEgress ? [] : proxyUidPaths(pod),
    staleDiff,
    restart: staleDiff.length > 0 ? restart : undefined,
    ...(annotations[ANNOTATION_INTERCEPTION_UPDATED_LIVE]
      ? { updatedLiveAt: annotations[ANNOTATION_INTERCEPTION_UPDATED_LIVE] }
      : {}),
    kernel,
  };
}

/** The text `osm explain pod/NAME` prints. */
export async function explainPod(
  kc: KubeConfig,
  options: ExplainPodOptions,
  deps?: ExplainPodDeps,
): Promise<string> {
  return formatPodExplanation(await explainPodReport(kc, options, deps));
}

export interface ExplainPodFlags {
  readonly namespace?: string;
  readonly host?: string;
  readonly method?: string;
  readonly path?: string;
  readonly protocol?: ExplainProtocol;
  readonly osmNamespace?: string;
  readonly kubeconfig?: string;
  readonly context?: string;
  /** Inbound: the source pod (`<namespace>/<pod>`); with `path`, a request's headers (`NAME:VALUE`). */
  readonly from?: string;
  readonly header?: readonly string[];
}

/** `--path`, `--method`, `--header NAME:VALUE`, `--host` → the request an inbound explanation decides. */
function inboundRequestOf(flags: ExplainPodFlags): HttpRequestFacts | undefined {
  if (flags.path === undefined) {
    if (flags.method === undefined) return undefined;
    throw new MeshError(ErrorCode.InvalidArgument, "--method describes a request: give --path too");
  }
  const { method = "GET", path = "/" } = checkedRequestLine(flags);
  const headers: Record<string, string> = {};
  for (const header of flags.header ?? []) {
    const colon = header.indexOf(":");
    if (colon <= 0) {
      throw new MeshError(ErrorCode.InvalidArgument, `--header ${JSON.stringify(header)} is not NAME:VALUE`);
    }
    headers[header.slice(0, colon).trim().toLowerCase()] = header.slice(colon + 1).trim();
  }
  if (flags.host !== undefined) headers["host"] = flags.host;
  return { method, path, headers };
}

/**
 * The whole `osm explain pod/NAME -n NS IP:PORT` command, for `osm explain` to call when its first
 * argument is a pod (the file form `osm explain -f FILE IP:PORT` stays as it is); with `--from SRC`, the
 * inbound side (explain-inbound-run.ts).
 */
export async function runExplainPodCommand(
  target: string,
  destination: string | undefined,
  flags: ExplainPodFlags,
  write: (text: string) => void,
): Promise<void> {
  const pod = podTargetName(target);
  if (pod === undefined) {
    throw new MeshError(ErrorCode.InvalidArgument, `${JSON.stringify(target)} is not pod/NAME`);
  }
  if (destination === undefined) {
    throw new MeshError(
      ErrorCode.InvalidArgument,
      `missing destination: osm explain ${target} -n NS IP:PORT`,
    );
  }
  const kc = loadKubeConfig(flags);
  const namespace = flags.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? "default";
  if (flags.from !== undefined) {
    const request = inboundRequestOf(flags);
    write(
      await explainInboundPod(kc, {
        namespace,
        pod,
        from: flags.from,
        destination,
        ...(flags.osmNamespace === undefined ? {} : { osmNamespace: flags.osmNamespace }),
        ...(request === undefined ? {} : { request }),
      }),
    );
    return;
  }
  const request = httpRequestOf(flags);
  write(
    await explainPod(kc, {
      namespace,
      pod,
      destination,
      osmNamespace: flags.osmNamespace,
      ...(flags.protocol ? { protocol: flags.protocol } : {}),
      ...(flags.host ? { host: flags.host } : {}),
      ...(request ? { request } : {}),
    }),
  );
}

/** `--method`, `--path`: checked here (a request needs the Host it goes to), undefined when neither is given. */
export function httpRequestOf(flags: ExplainPodFlags): ExplainPodOptions["request"] {
  if (flags.method === undefined && flags.path === undefined) return undefined;
  if (flags.host === undefined) {
    throw new MeshError(
      ErrorCode.InvalidArgument,
      "--method and --path describe an http request: they need --host",
      {
        hint: "add --host NAME, the Host header the request carries (e.g. --host httpbin.org --path /get)",
      },
    );
  }
  return checkedRequestLine(flags);
}

/** `--path` and `--method` as given, each checked (a path starts with `/`, a method is in capitals). */
function checkedRequestLine(flags: ExplainPodFlags): { method?: string; path?: string } {
  if (flags.path !== undefined && !flags.path.startsWith("/")) {
    throw new MeshError(
      ErrorCode.InvalidArgument,
      `--path ${JSON.stringify(flags.path)} is not a request path`,
      {
        hint: `start it with "/", e.g. --path /${flags.path}`,
      },
    );
  }
  if (flags.method !== undefined && !/^[A-Z]+$/.test(flags.method)) {
    const upper = flags.method.toUpperCase();
    throw new MeshError(
      ErrorCode.InvalidArgument,
      `--method ${JSON.stringify(flags.method)} is not an HTTP method`,
      {
        hint: /^[A-Z]+$/.test(upper)
          ? `methods are case-sensitive: did you mean --method ${upper}?`
          : "give one method in capitals, e.g. --method GET",
      },
    );
  }
  return {
    ...(flags.method === undefined ? {} : { method: flags.method }),
    ...(flags.path === undefined ? {} : { path: flags.path }),
  };
}
