/**
 * `osm proxy get QUERY POD -n NS` as OSM's CLI (cmd/cli/proxy_get.go): the sidecar's admin endpoint listens
 * on 127.0.0.1:15000 inside the pod, so it is reached from inside: we exec, through the Kubernetes API, the
 * sidecar container's own `osm` binary (`osm proxy admin-get QUERY`), which needs nothing else in the image
 * and works on any cluster that supports `kubectl exec`. OSM uses a port-forward for the same reason.
 */
import { PassThrough, type Writable } from "node:stream";
import { CoreV1Api, Exec, type KubeConfig, type V1Pod, type V1Status } from "@kubernetes/client-node";
import { ENVOY_ADMIN_PORT, ENVOY_UNIQUE_ID_LABEL_NAME, SIDECAR_CONTAINER_NAME } from "../constants.ts";
import { apiErrorMessage } from "../edge/kube-client.ts";
import { ErrorCode, MeshError } from "../errors.ts";

/**
 * The admin path for an OSM query. Envoy's `stats` is served by the osm-ts sidecar in Prometheus format
 * only, so `stats` maps to `stats/prometheus`; anything else is forwarded as is (OSM: "as is").
 */
export function adminPath(query: string): string {
  const trimmed = query.replace(/^\/+/, "");
  return trimmed === "stats" ? "stats/prometheus" : trimmed;
}

/**
 * The argv to exec in the sidecar container: its own command up to `sidecar` (the osm binary as the
 * injector wrote it, e.g. `["/opt/osm/bin/osm"]`), then `proxy admin-get PATH`.
 */
export function adminGetCommand(pod: V1Pod, query: string): string[] {
  const container = pod.spec?.containers.find((c) => c.name === SIDECAR_CONTAINER_NAME);
  const command = container?.command ?? [];
  const at = command.indexOf("sidecar");
  if (at < 1) {
    throw new MeshError(
      ErrorCode.InvalidArgument,
      `Pod ${pod.metadata?.name} has no osm-ts sidecar container "${SIDECAR_CONTAINER_NAME}" to query`,
    );
  }
  return [...command.slice(0, at), "proxy", "admin-get", adminPath(query)];
}

export interface ProxyGetOptions {
  readonly namespace: string;
  readonly pod: string;
  readonly query: string;
}

/** Runs the query in the pod and streams the admin endpoint's answer to `out`. */
export async function proxyGet(kc: KubeConfig, options: ProxyGetOptions, out: Writable): Promise<void> {
  const { namespace, pod: name } = options;
  let pod: V1Pod;
  try {
    pod = await kc.makeApiClient(CoreV1Api).readNamespacedPod({ namespace, name });
  } catch (error) {
    throw new MeshError(ErrorCode.NotFound, `Could not find pod ${name} in namespace ${namespace}`, {
      cause: error,
    });
  }
  if (pod.metadata?.labels?.[ENVOY_UNIQUE_ID_LABEL_NAME] === undefined) {
    throw new MeshError(
      ErrorCode.InvalidArgument,
      `Pod ${name} in namespace ${namespace} is not a part of a mesh`,
    );
  }
  if (pod.status?.phase !== "Running") {
    throw new MeshError(ErrorCode.Unavailable, `Pod ${name} in namespace ${namespace} is not running`);
  }
  const argv = adminGetCommand(pod, options.query);
  const stderr = new PassThrough();
  let errorText = "";
  stderr.setEncoding("utf8").on("data", (chunk: string) => {
    errorText += chunk;
  });
  const status = await new Promise<V1Status>((resolve, reject) => {
    new Exec(kc)
      .exec(namespace, name, SIDECAR_CONTAINER_NAME, argv, out, stderr, null, false, resolve)
      .then((socket) => {
        // A socket closed without a status means the exec ended without a verdict.
        socket.on("close", () => resolve({ status: "Failure", message: "the exec stream closed early" }));
      }, reject);
  }).catch((error: unknown) => {
    throw new MeshError(
      ErrorCode.Unavailable,
      `Error retrieving proxy config for pod ${name} in namespace ${namespace}: ${apiErrorMessage(error)}`,
      { cause: error },
    );
  });
  if (status.status !== "Success") {
    const detail = errorText.trim() || status.message || "failed";
    throw new MeshError(
      ErrorCode.Unavailable,
      `Error retrieving proxy config for pod ${name} in namespace ${namespace}: ${detail}`,
    );
  }
}

/** `osm proxy admin-get PATH` (run inside the pod): GET http://127.0.0.1:15000/PATH, the body to `out`. */
export async function adminGet(path: string, out: Writable, port = ENVOY_ADMIN_PORT): Promise<void> {
  const url = `http://127.0.0.1:${port}/${path.replace(/^\/+/, "")}`;
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  } catch (error) {
    throw new MeshError(ErrorCode.Unavailable, `Error fetching url ${url}: ${apiErrorMessage(error)}`, {
      cause: error,
    });
  }
  const body = await response.text();
  if (!response.ok) {
    throw new MeshError(
      ErrorCode.Unavailable,
      `Error fetching url ${url}: HTTP ${response.status}: ${body.trim()}`,
    );
  }
  await new Promise<void>((resolve, reject) =>
    out.write(body, (error) => (error ? reject(error) : resolve())),
  );
}
