/**
 * The demo's step list: OSM's guide "Outbound Traffic IP Range Exclusions", with the guide's own commands
 * (real `kubectl`, `osm`), plus OSM's httpbin sample to show mesh traffic next to egress. Pure: it only
 * builds argv arrays and expectations; the runner executes them.
 */
import { formatHostPort } from "../../net/host-port.ts";
import type { Expectation } from "./expect.ts";
import type { DemoVars, Step } from "./runner.ts";

/** The two addresses of the external, non-mesh host (the guide's httpbin.org). */
export interface ExternalAddresses {
  /** The address the guide excludes from interception (reachable after the restart). */
  readonly excluded: string;
  /** An address left alone (still refused by the sidecar). */
  readonly other: string;
  /** Host prefix length of the family (/32 or /128). */
  readonly hostPrefix: 32 | 128;
}

export const IPV4_ADDRESSES: ExternalAddresses = {
  excluded: "203.0.113.10",
  other: "203.0.113.11",
  hostPrefix: 32,
};
export const IPV6_ADDRESSES: ExternalAddresses = {
  excluded: "2001:db8::10",
  other: "2001:db8::11",
  hostPrefix: 128,
};

export interface DemoStepOptions {
  readonly addresses: ExternalAddresses;
  /** How to run osm, e.g. `["bin/osm"]`. Printed as `osm`. */
  readonly osm: readonly string[];
  readonly kubectl: string;
  /** Absolute path of examples/guide (curl.yaml, httpbin.yaml). */
  readonly examplesDir: string;
  /** Steps that bring the mesh up and the external host in (from the runtime in use). */
  readonly setup: readonly Step[];
  /** Arguments that point `osm mesh status` at the daemon in use (e.g. `--state-dir DIR`); none for the default. */
  readonly meshArgs?: readonly string[];
}

/** `http://203.0.113.10:80`, `http://[2001:db8::10]:80`. */
export function urlOf(address: string, port: number): string {
  return `http://${formatHostPort(address, port)}`;
}

/** curl's exit codes for a connection the sidecar does not let through: refused (7), closed (52), reset (56). */
export const REFUSED: Expectation = {
  exitCodeIn: [7, 52, 56],
  output: [/curl: \((7|52|56)\)/],
  describe: "refused (curl: (7) no listener, (52)/(56) closed by the sidecar)",
};
export const OK_200: Expectation = { stdout: [/HTTP\/1\.1 200 OK/], describe: '"HTTP/1.1 200 OK"' };
/** Exactly one pod row, and it is 2/2 Running (an old pod still terminating does not count as done). */
export const ONE_POD_READY: Expectation = {
  stdout: [/^NAME[^\n]*\n\S+\s+2\/2\s+Running[^\n]*\n?$/],
  describe: "one pod, 2/2 Running",
};

export const WAIT_PODS = { timeoutMs: 180_000, intervalMs: 2000 };

/** `kubectl exec` into the curl pod (its name captured as `curlPod`) running `command`. */
export function execInCurlPod(kubectl: string, command: readonly string[]) {
  return (vars: DemoVars) => [
    kubectl,
    "exec",
    "-n",
    "curl",
    vars.get("curlPod") ?? "",
    "-c",
    "curl",
    "--",
    ...command,
  ];
}

/** curl from the curl pod; `flags` after the guide's `-sSI` (e.g. `-k`). */
export function curlFromPod(kubectl: string, url: string, flags: readonly string[] = []) {
  // -sS: no progress meter, errors still shown; -I: headers only, as the guide (curl -I).
  return execInCurlPod(kubectl, ["curl", "-sSI", ...flags, "--max-time", "10", url]);
}

/** `osm explain pod/<curl pod> -n curl DESTINATION [...more]`: where a connection from the curl pod goes. */
export function explainCurlPod(osm: readonly string[], destination: string, more: readonly string[] = []) {
  return (vars: DemoVars) => [
    ...osm,
    "explain",
    `pod/${vars.get("curlPod") ?? ""}`,
    "-n",
    "curl",
    destination,
    ...more,
  ];
}

/** The guide's way to change the MeshConfig: `kubectl patch ... --type=merge`. */
export function patchMeshConfig(kubectl: string, patch: string): string[] {
  return [kubectl, "patch", "meshconfig", "osm-mesh-config", "-n", "osm-system", "-p", patch, "--type=merge"];
}

/** The guide's way to run one of OSM's samples in the mesh: its namespace, added to the mesh, then its YAML. */
export function sampleInTheMesh(o: SampleOptions, app: string, created: readonly RegExp[]): Step[] {
  return [
    {
      kind: "command",
      title: `Create the ${app} namespace`,
      argv: [o.kubectl, "create", "namespace", app],
      expect: { stdout: [new RegExp(`namespace/${app} created`)] },
    },
    {
      kind: "command",
      title: "Add it to the mesh",
      argv: [...o.osm, "namespace", "add", app],
      expect: { stdout: [new RegExp(`Namespace \\[${app}\\] successfully added to mesh \\[osm\\]`)] },
    },
    {
      kind: "command",
      title: `Deploy OSM's ${app} sample`,
      argv: [o.kubectl, "apply", "-f", `${o.examplesDir}/${app}.yaml`, "-n", app],
      expect: { stdout: [...created] },
    },
  ];
}

type SampleOptions = Pick<DemoStepOptions, "osm" | "kubectl" | "examplesDir">;

/** The curl pod's name, captured as `curlPod` for the commands run in it. */
export function curlPodName(kubectl: string, title = "Look up the curl pod's name"): Step {
  return {
    kind: "command",
    title,
    argv: [kubectl, "get", "pod", "-n", "curl", "-l", "app=curl", "-o", "jsonpath={.items[0].metadata.name}"],
    expect: { stdout: [/^curl-\S+$/], describe: "a pod name (curl-…)" },
    capture: "curlPod",
  };
}

/** The guide's start: egress disabled mesh-wide, OSM's curl sample running in the mesh, its pod's name noted. */
export function curlWithEgressDisabled(o: SampleOptions): Step[] {
  const k = o.kubectl;
  return [
    {
      kind: "command",
      title: "Disable egress mesh-wide",
      argv: patchMeshConfig(k, '{"spec":{"traffic":{"enableEgress":false}}}'),
      expect: { stdout: [/meshconfig\.config\.openservicemesh\.io\/osm-mesh-config patched/] },
    },
    ...sampleInTheMesh(o, "curl", [/serviceaccount\/curl created/, /deployment\.apps\/curl created/]),
    {
      kind: "command",
      title: "Wait for the curl pod to run with its sidecar (2/2 Running)",
      argv: [k, "get", "pods", "-n", "curl"],
      expect: ONE_POD_READY,
      waitUntil: WAIT_PODS,
      diagnose: [
        [k, "get", "pods", "-n", "curl", "-o", "wide"],
        [k, "get", "events", "-n", "curl"],
      ],
    },
    curlPodName(k),
  ];
}

/** The guide's steps, in order, after the runtime's own setup steps. */
export function buildDemoSteps(o: DemoStepOptions): Step[] {
  const k = o.kubectl;
  const { excluded, other, hostPrefix } = o.addresses;
  const excludedCidr = `${excluded}/${hostPrefix}`;
  const patchExclusion = JSON.stringify({
    spec: { traffic: { outboundIPRangeExclusionList: [excludedCidr] } },
  });
  const badPatch = JSON.stringify({
    spec: { traffic: { outboundIPRangeExclusionList: [`${excluded}/${hostPrefix + 1}`] } },
  });
  const readBack: Step = {
    kind: "command",
    title: "Read the exclusion list back",
    argv: [
      k,
      "get",
      "meshconfig",
      "osm-mesh-config",
      "-n",
      "osm-system",
      "-o",
      'jsonpath={.spec.traffic.outboundIPRangeExclusionList}{"\\n"}',
    ],
    expect: { stdoutEquals: JSON.stringify([excludedCidr]) },
  };
  return [
    ...o.setup,
    ...curlWithEgressDisabled(o),
    {
      kind: "command",
      title: `curl ${excluded} from the pod: refused (egress is disabled)`,
      argv: curlFromPod(k, urlOf(excluded, 80)),
      expect: REFUSED,
    },
    {
      kind: "command",
      title: `Exclude ${excludedCidr} from interception`,
      argv: patchMeshConfig(k, patchExclusion),
      expect: { stdout: [/osm-mesh-config patched/] },
    },
    readBack,
    {
      kind: "command",
      title: "An invalid exclusion is refused by the MeshConfig validator",
      argv: patchMeshConfig(k, badPatch),
      expect: { exitCode: 1, output: [/outboundIPRangeExclusionList\[0\]/] },
    },
    { ...readBack, title: "The MeshConfig is unchanged" },
    {
      kind: "command",
      title: "The running pod is stale: its interception was programmed before the change",
      argv: [...o.osm, "proxy", "status", "-n", "curl"],
      expect: {
        stdout: [
          /STALE/,
          new RegExp(`\\+${excludedCidr.replaceAll(".", "\\.")}`),
          /kubectl rollout restart deployment curl -n curl/,
        ],
      },
    },
    {
      kind: "command",
      title: "The mesh's status counts it too",
      argv: [...o.osm, "mesh", "status", ...(o.meshArgs ?? [])],
      expect: { stdout: [/meshed pod\(s\), [1-9]\d* with an out-of-date interception policy/] },
    },
    {
      kind: "command",
      title: "Restart it",
      argv: [k, "rollout", "restart", "deployment", "curl", "-n", "curl"],
      expect: { stdout: [/deployment\.apps\/curl restarted/] },
    },
    {
      kind: "command",
      title: "Wait for the rollout",
      argv: [k, "rollout", "status", "deployment", "curl", "-n", "curl", "--timeout=180s"],
      expect: { stdout: [/successfully rolled out/] },
      timeoutMs: 200_000,
    },
    {
      kind: "command",
      title: "Wait for the new pod alone (2/2 Running)",
      argv: [k, "get", "pods", "-n", "curl"],
      expect: ONE_POD_READY,
      waitUntil: WAIT_PODS,
    },
    curlPodName(k, "Look up the new pod's name"),
    {
      kind: "command",
      title: "The new pod runs the current interception policy",
      argv: [...o.osm, "proxy", "status", "-n", "curl"],
      expect: { stdout: [/current/], notOutput: [/STALE/] },
    },
    {
      kind: "command",
      title: `curl ${excluded} from the pod: it answers (not intercepted)`,
      argv: curlFromPod(k, urlOf(excluded, 80)),
      expect: OK_200,
    },
    {
      kind: "command",
      title: `curl ${other} from the pod: still refused`,
      argv: curlFromPod(k, urlOf(other, 80)),
      expect: REFUSED,
    },
    {
      kind: "command",
      title: `Explain: ${excluded} goes direct, because of the MeshConfig's exclusion`,
      argv: explainCurlPod(o.osm, formatHostPort(excluded, 80)),
      expect: { stdout: [/verdict: direct/, /MeshConfig spec\.traffic\.outboundIPRangeExclusionList/] },
      waitUntil: { timeoutMs: 10_000, intervalMs: 1000 },
    },
    {
      kind: "command",
      title: `Explain: ${other} goes to the sidecar, which refuses it`,
      argv: explainCurlPod(o.osm, formatHostPort(other, 80)),
      expect: { stdout: [/verdict: outbound sidecar .*refused: egress is disabled/] },
      waitUntil: { timeoutMs: 10_000, intervalMs: 1000 },
    },
    ...sampleInTheMesh(o, "httpbin", [/service\/httpbin created/, /deployment\.apps\/httpbin created/]),
    {
      kind: "command",
      title: "Wait for httpbin to run with its sidecar (2/2 Running)",
      argv: [k, "get", "pods", "-n", "httpbin"],
      expect: ONE_POD_READY,
      waitUntil: WAIT_PODS,
    },
    {
      kind: "command",
      title: "Look up the httpbin Service's cluster IP",
      argv: [k, "get", "service", "httpbin", "-n", "httpbin", "-o", "jsonpath={.spec.clusterIP}"],
      expect: { stdout: [/^\S+$/], describe: "an address" },
      capture: "httpbinIP",
    },
    {
      kind: "command",
      title: "curl httpbin through both sidecars: allowed (mesh traffic), with egress still off",
      argv: (vars) => curlFromPod(k, urlOf(vars.get("httpbinIP") ?? "", 14001))(vars),
      expect: OK_200,
      waitUntil: { timeoutMs: 30_000, intervalMs: 1000 },
    },
    {
      kind: "command",
      title: `curl ${other} again: outside the mesh, still refused`,
      argv: curlFromPod(k, urlOf(other, 80)),
      expect: REFUSED,
    },
  ];
}

/**
 * Removes what a demo created when the mesh itself stays (it was running before the demo): its namespaces, and
 * the MeshConfig fields it noted first put back (only those: never overwrite what it did not change).
 */
export function buildGuideCleanup(
  o: Pick<DemoStepOptions, "kubectl">,
  vars: DemoVars,
  namespaces: readonly string[] = ["curl", "httpbin"],
): Step[] {
  const k = o.kubectl;
  return [
    {
      kind: "command",
      title: "Delete the demo's namespaces",
      argv: [k, "delete", "namespace", ...namespaces, "--ignore-not-found", "--wait=false"],
      expect: {},
    },
    {
      kind: "command",
      title: "Restore the MeshConfig fields the demo changed",
      skip: (v) => (v.has("egressBefore") ? undefined : "the demo did not change the MeshConfig"),
      argv: () => [
        k,
        "patch",
        "meshconfig",
        "osm-mesh-config",
        "-n",
        "osm-system",
        "--type=merge",
        "-p",
        JSON.stringify({
          spec: {
            traffic: {
              enableEgress: vars.get("egressBefore") !== "false",
              ...(vars.has("exclusionsBefore")
                ? { outboundIPRangeExclusionList: parseList(vars.get("exclusionsBefore")) }
                : {}),
            },
          },
        }),
      ],
      expect: {},
    },
  ];
}

function parseList(text: string | undefined): string[] | null {
  if (!text) return null;
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? value.map(String) : null;
  } catch {
    return null;
  }
}
