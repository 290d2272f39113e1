/**
 * The sidecar config watch API: the one contract between the controller (which serves it) and the sidecar
 * (which watches it), and the format of `osm sidecar run --config FILE`. Versioned by `apiVersion`; a change
 * that old sidecars cannot read gets a new version string, never a silent reinterpretation.
 *
 * Transport (HTTP/JSON long-poll):
 *   GET <control-plane>/sidecar/v1/config?pod=<ns>/<name>&sinceVersion=<n>&timeoutSeconds=<s>
 *   - 200 + a SidecarConfig body as soon as the config for that pod has `version > sinceVersion`
 *     (immediately when `sinceVersion` is absent);
 *   - 204 when `timeoutSeconds` pass without a newer version (the client asks again at once);
 *   - any other status or a network error: the client keeps its last good config and retries with
 *     exponential backoff and jitter.
 */
import { z } from "zod";
import { tryParseIp } from "../net/ip.ts";

/** The `apiVersion` every document of this API carries. */
export const SIDECAR_API_VERSION = "osm.sidecar/v1";
/** The long-poll path the controller serves. */
export const SIDECAR_CONFIG_PATH = "/sidecar/v1/config";
/** How long the controller may hold a long-poll before answering 204 (the client's default ask). */
export const SIDECAR_LONG_POLL_SECONDS = 30;

/** An IP address, v4 or v6, rewritten to canonical text (so `2001:DB8::0:1` and `2001:db8::1` compare equal). */
const ipText = z.string().transform((text, ctx) => {
  const parsed = tryParseIp(text.trim());
  if (!parsed.ok) {
    ctx.addIssue({ code: "custom", message: `is not a valid IP address: ${parsed.reason}` });
    return z.NEVER;
  }
  return parsed.value.toString();
});

const port = z.number().int().min(1).max(65535);

/** Where the sidecar forwards a mesh connection: one backend (a pod IP and its target port). */
export const sidecarBackendSchema = z.strictObject({ ip: ipText, port });

/**
 * One mesh destination: an address the app dials (a Service ClusterIP, or a pod IP for headless services)
 * and port. A connection to it is proxied: to `backends` (round robin) when given, else to the dialled
 * address itself (headless: the pod IP is the backend).
 */
export const sidecarMeshEndpointSchema = z.strictObject({
  /** `<namespace>/<service>`: names the upstream in logs and metrics. */
  service: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, {
    message: "must be <namespace>/<service>, each a DNS-1123 label",
  }),
  ip: ipText,
  port,
  backends: z.array(sidecarBackendSchema).default([]),
});

export const sidecarConfigSchema = z.strictObject({
  apiVersion: z.literal(SIDECAR_API_VERSION),
  /** Monotonically increasing per pod; the sidecar ignores a document whose version is not newer. */
  version: z.number().int().min(0),
  /** MeshConfig `spec.traffic.enableEgress`: non-mesh destinations pass through (true) or are refused (false). */
  enableEgress: z.boolean(),
  /** MeshConfig `spec.sidecar.maxDataPlaneConnections`; 0 means no limit (OSM's default). */
  maxDataPlaneConnections: z.number().int().min(0).default(0),
  meshEndpoints: z.array(sidecarMeshEndpointSchema).default([]),
});

export type SidecarBackend = z.output<typeof sidecarBackendSchema>;
export type SidecarMeshEndpoint = z.output<typeof sidecarMeshEndpointSchema>;
/** A validated config: IPs canonical, defaults filled. */
export type SidecarConfig = z.output<typeof sidecarConfigSchema>;
/** What a controller may send (defaults optional). */
export type SidecarConfigInput = z.input<typeof sidecarConfigSchema>;

/** One problem with a config document: the field path as `meshEndpoints[0].ip`, and why. */
export interface SidecarConfigProblem {
  readonly path: string;
  /** The value as given at that path (undefined when missing). */
  readonly value: unknown;
  readonly message: string;
}

function valueAt(document: unknown, path: readonly PropertyKey[]): unknown {
  let value = document;
  for (const key of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

export type SidecarConfigParse =
  | { readonly ok: true; readonly config: SidecarConfig }
  | { readonly ok: false; readonly problems: readonly SidecarConfigProblem[] };

function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    out += typeof key === "number" ? `[${key}]` : out === "" ? String(key) : `.${String(key)}`;
  }
  return out === "" ? "<document>" : out;
}

/** Validates an untrusted document (parsed JSON) against the current API version; never throws. */
export function parseSidecarConfig(document: unknown): SidecarConfigParse {
  const result = sidecarConfigSchema.safeParse(document);
  if (result.success) return { ok: true, config: result.data };
  return {
    ok: false,
    problems: result.error.issues.map((issue) => ({
      path: formatPath(issue.path),
      value: valueAt(document, issue.path),
      message: issue.message,
    })),
  };
}
