/**
 * `osm install` returns only when the control plane works, as OSM's does (`--timeout`, default 5m0s): the
 * controller and injector Deployments are Ready and the admission webhooks answer. Without this, a user's
 * next command (the guide's MeshConfig patch) can meet "no endpoints available for service osm-injector".
 * The webhook check is a server-side dry-run update of the MeshConfig: it goes through the validating
 * webhook exactly as the user's patch will, and changes nothing.
 */
import {
  AppsV1Api,
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Deployment,
} from "@kubernetes/client-node";
import { MESH_CONFIG_NAME } from "../constants.ts";
import { apiErrorMessage } from "../edge/kube-client.ts";
import { ErrorCode, MeshError } from "../errors.ts";

/** Go's duration text as OSM's flag takes it (`5m0s`, `90s`, `1m30s`, `2m`); milliseconds, or undefined. */
export function parseGoDuration(text: string): number | undefined {
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
  if (!/^(\d+(\.\d+)?(h|ms|m|s))+$/.test(text)) return undefined;
  let total = 0;
  for (const [, amount, , unit] of text.matchAll(/(\d+(\.\d+)?)(h|ms|m|s)/g)) {
    total += Number(amount) * (units[unit ?? "s"] ?? 0);
  }
  return total;
}

/** `Ready` as `kubectl rollout status` judges it; else what is still missing. */
export function deploymentReadiness(d: V1Deployment | undefined): string | undefined {
  if (!d) return "not found";
  const want = d.spec?.replicas ?? 1;
  const status = d.status ?? {};
  if ((status.observedGeneration ?? 0) < (d.metadata?.generation ?? 0)) return "update not yet observed";
  if ((status.updatedReplicas ?? 0) < want) return `${status.updatedReplicas ?? 0}/${want} updated`;
  if ((status.readyReplicas ?? 0) < want) return `${status.readyReplicas ?? 0}/${want} ready`;
  return undefined;
}

export interface WaitOptions {
  readonly kc: KubeConfig;
  readonly osmNamespace: string;
  readonly deployments: readonly string[];
  readonly timeoutMs: number;
  readonly out: (line: string) => void;
  readonly pollMs?: number;
}

export async function waitForControlPlane(options: WaitOptions): Promise<void> {
  const { kc, osmNamespace, out } = options;
  const apps = kc.makeApiClient(AppsV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const deadline = Date.now() + options.timeoutMs;
  const pause = () => new Promise((r) => setTimeout(r, options.pollMs ?? 500));
  const pending = new Map<string, string>(options.deployments.map((name) => [name, "not checked yet"]));
  out(`Waiting for the control plane in namespace [${osmNamespace}] to be ready`);
  while (pending.size > 0 && Date.now() < deadline) {
    for (const name of [...pending.keys()]) {
      const why = await apps
        .readNamespacedDeployment({ name, namespace: osmNamespace })
        .then(deploymentReadiness, (error: unknown) => apiErrorMessage(error));
      if (why === undefined) {
        pending.delete(name);
        out(`  deployment ${name} is ready`);
      } else pending.set(name, why);
    }
    if (pending.size > 0) await pause();
  }
  let webhook: string | undefined = "not checked yet";
  while (pending.size === 0 && webhook !== undefined && Date.now() < deadline) {
    webhook = await custom
      .patchNamespacedCustomObject(
        {
          group: "config.openservicemesh.io",
          version: "v1alpha2",
          namespace: osmNamespace,
          plural: "meshconfigs",
          name: MESH_CONFIG_NAME,
          body: {},
          dryRun: "All",
        },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      )
      .then(
        () => undefined,
        (error: unknown) => apiErrorMessage(error),
      );
    if (webhook === undefined) out("  the admission webhooks answer");
    else await pause();
  }
  if (pending.size === 0 && webhook === undefined) return;
  const waiting = [
    ...[...pending].map(([name, why]) => `deployment ${name}: ${why}`),
    ...(pending.size === 0 ? [`admission webhooks: ${webhook}`] : []),
  ];
  throw new MeshError(
    ErrorCode.Unavailable,
    `the control plane was not ready within ${options.timeoutMs / 1000} s:\n  ${waiting.join("\n  ")}`,
    {
      hint: `see \`kubectl get pods -n ${osmNamespace}\` and \`kubectl get events -n ${osmNamespace}\`; a slow machine may need a longer --timeout`,
    },
  );
}
