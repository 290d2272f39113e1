/**
 * HTTP health probes through the sidecar (OSM's pkg/injector/health_probes.go and the Envoy bootstrap's
 * probe listeners): the injector points a container's httpGet liveness/readiness/startup probe at the
 * sidecar's port for that kind (15901/15902/15903), path `/osm-<kind>-probe/<container>`, and tells the
 * sidecar where the original was with `--probe`; the sidecar forwards the kubelet's request there, to
 * 127.0.0.1, whatever access control says (the kubelet is no mesh source). An https probe keeps its path and
 * is relayed as bytes (TLS not terminated), as OSM's TCP proxy filter chain does. The `--probe` text is the
 * one contract between the two; no dependencies (the sidecar loads it).
 */
import { LIVENESS_PROBE_PORT, READINESS_PROBE_PORT, STARTUP_PROBE_PORT } from "../constants.ts";

export const PROBE_KINDS = ["liveness", "readiness", "startup"] as const;
export type ProbeKind = (typeof PROBE_KINDS)[number];

/** The sidecar port each kind is rewritten to (OSM's LivenessProbePort etc.). */
export const PROBE_PORTS: Readonly<Record<ProbeKind, number>> = {
  liveness: LIVENESS_PROBE_PORT,
  readiness: READINESS_PROBE_PORT,
  startup: STARTUP_PROBE_PORT,
};

/** The path prefix of a rewritten http probe: `/osm-<kind>-probe/<container>` (OSM's LivenessProbePath etc.). */
export function probePath(kind: ProbeKind, container: string): string {
  return `/osm-${kind}-probe/${container}`;
}

/** One original probe the sidecar forwards to. */
export interface ForwardedProbe {
  readonly kind: ProbeKind;
  readonly container: string;
  readonly scheme: "http" | "https";
  /** The app's port on 127.0.0.1. */
  readonly port: number;
  /** The original path (http: what the rewritten prefix becomes). */
  readonly path: string;
}

/** `--probe` text: `<kind>/<container>=<scheme>:<port><path>`, e.g. `readiness/app=http:8080/healthz`. */
export function formatProbe(probe: ForwardedProbe): string {
  return `${probe.kind}/${probe.container}=${probe.scheme}:${probe.port}${probe.path}`;
}

const PROBE_TEXT =
  /^(liveness|readiness|startup)\/([a-z0-9]([-a-z0-9]*[a-z0-9])?)=(http|https):(\d{1,5})(\/\S*)$/;

/** Parses `--probe` text; undefined when it is not `<kind>/<container>=<http|https>:<port>/<path>`. */
export function parseProbe(text: string): ForwardedProbe | undefined {
  const match = PROBE_TEXT.exec(text);
  if (match === null) return undefined;
  const port = Number(match[5]);
  if (port < 1 || port > 65535) return undefined;
  return {
    kind: match[1] as ProbeKind,
    container: match[2]!,
    scheme: match[4] as "http" | "https",
    port,
    path: match[6]!,
  };
}
