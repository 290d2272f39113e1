/**
 * The one kube-client helper over @kubernetes/client-node, for every API caller: load a kubeconfig the way
 * kubectl does, read a failed call's HTTP status, and turn an API error into the text client-go would print
 * (the Status message).
 */
import { ApiException, KubeConfig } from "@kubernetes/client-node";
import { ErrorCode, MeshError } from "../errors.ts";

export interface KubeConfigOptions {
  /** Path given with --kubeconfig; undefined means $KUBECONFIG, then ~/.kube/config (kubectl's order). */
  readonly kubeconfig?: string | undefined;
  /** Context name given with --context; undefined means the kubeconfig's current context. */
  readonly context?: string | undefined;
  /**
   * In a pod (`KUBERNETES_SERVICE_HOST` set), its own service account first, unless --kubeconfig says
   * otherwise: a root container on a runtime that shows it the host's filesystem (the embedded node agent)
   * would otherwise pick up root's `~/.kube/config` there.
   */
  readonly preferInCluster?: boolean;
}

/** Loads a kubeconfig as kubectl would; the caller (the CLI) passes the flags it read. */
export function loadKubeConfig(options: KubeConfigOptions = {}): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (options.kubeconfig) kc.loadFromFile(options.kubeconfig);
    else if (options.preferInCluster && process.env["KUBERNETES_SERVICE_HOST"]) kc.loadFromCluster();
    else kc.loadFromDefault();
  } catch (error) {
    // OSM's wording (cmd/cli: "Error fetching kubeconfig: %s").
    throw new MeshError(ErrorCode.InvalidArgument, `Error fetching kubeconfig: ${apiErrorMessage(error)}`, {
      cause: error,
    });
  }
  // client-node's last resort is http://localhost:8080, which only fails later with a TLS message; say why.
  const cluster = kc.getCurrentCluster();
  if (!options.kubeconfig && cluster?.name === "cluster" && cluster.server === "http://localhost:8080") {
    throw new MeshError(
      ErrorCode.InvalidArgument,
      "no kubeconfig found: $KUBECONFIG is not set, ~/.kube/config does not exist and this is not a pod",
      { hint: "run `osm mesh up` (it writes a kubeconfig context), or pass --kubeconfig" },
    );
  }
  if (options.context) {
    if (!kc.getContextObject(options.context)) {
      throw new MeshError(ErrorCode.InvalidArgument, `context "${options.context}" does not exist`);
    }
    kc.setCurrentContext(options.context);
  }
  return kc;
}

/**
 * The message client-go's error would carry for a failed API call: the Status `message` when the server sent
 * one (e.g. `namespaces "curl" not found`), else the HTTP code, else the error's own text.
 */
export function apiErrorMessage(error: unknown): string {
  if (error instanceof ApiException) {
    const status = parseStatus(error.body);
    if (status?.message) return status.message;
    return `the server responded with HTTP ${error.code}`;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}

/** The HTTP status of a failed API call (undefined for a network error or anything else). */
export function apiErrorCode(error: unknown): number | undefined {
  const e = error as { code?: unknown; statusCode?: unknown } | null | undefined;
  if (typeof e?.code === "number") return e.code;
  return typeof e?.statusCode === "number" ? e.statusCode : undefined;
}

function parseStatus(body: unknown): { message?: string } | undefined {
  let value: unknown = body;
  if (typeof body === "string") {
    try {
      value = JSON.parse(body);
    } catch {
      return body.trim() === "" ? undefined : { message: body.trim() };
    }
  }
  if (value && typeof value === "object" && "message" in value && typeof value.message === "string") {
    return { message: value.message };
  }
  return undefined;
}
