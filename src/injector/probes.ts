/**
 * OSM's probe rewriting (pkg/injector/health_probes.go), pure: each app container's httpGet liveness,
 * readiness and startup probe is pointed at the sidecar (src/config/health-probes.ts), which forwards it to
 * the original port and path, so probes keep working when access control refuses everything else. An http
 * probe gets port 1590x and path `/osm-<kind>-probe/<container>`; an https probe only the port (the sidecar
 * relays its TLS untouched). tcpSocket and exec probes are left as they are: a TCP probe's connection is
 * accepted by the inbound listener before any decision, so it passes without OSM's `osm-healthcheck`
 * container.
 */
import type { V1Container, V1Pod, V1Probe } from "@kubernetes/client-node";
import {
  type ForwardedProbe,
  PROBE_KINDS,
  PROBE_PORTS,
  type ProbeKind,
  probePath,
} from "../config/health-probes.ts";
import type { JsonPatchOperation } from "./types.ts";

export interface ProbeRewrite {
  readonly patch: JsonPatchOperation[];
  /** What the sidecar forwards to (its `--probe` flags). */
  readonly forwarded: ForwardedProbe[];
  readonly warnings: string[];
}

const FIELD: Readonly<Record<ProbeKind, "livenessProbe" | "readinessProbe" | "startupProbe">> = {
  liveness: "livenessProbe",
  readiness: "readinessProbe",
  startup: "startupProbe",
};

/** A probe's port: a number, or the name of one of the container's ports (OSM's getPort). */
function resolvePort(port: unknown, container: V1Container): number | undefined {
  if (typeof port === "number") return port;
  if (typeof port !== "string") return undefined;
  if (/^\d+$/.test(port)) return Number(port);
  return container.ports?.find((p) => p.name !== undefined && p.name === port)?.containerPort;
}

export function rewriteProbes(pod: V1Pod): ProbeRewrite {
  const out: ProbeRewrite = { patch: [], forwarded: [], warnings: [] };
  (pod.spec?.containers ?? []).forEach((container, index) => {
    for (const kind of PROBE_KINDS) {
      const probe: V1Probe | undefined = container[FIELD[kind]];
      const httpGet = probe?.httpGet;
      if (httpGet === undefined) continue;
      const at = `/spec/containers/${index}/${FIELD[kind]}/httpGet`;
      const port = resolvePort(httpGet.port, container);
      if (port === undefined || port < 1 || port > 65535) {
        // OSM rewrites it anyway, to a port 0 that never answers; left alone here, it works as it did.
        out.warnings.push(
          `probe-not-rewritten: container ${container.name}: ${FIELD[kind]}.httpGet.port ${JSON.stringify(httpGet.port)} names no port of the container; the probe is not sent through the sidecar (with permissive traffic policy mode off it is refused)`,
        );
        continue;
      }
      const http = httpGet.scheme === undefined || httpGet.scheme.toUpperCase() === "HTTP";
      const path = httpGet.path || "/";
      out.forwarded.push({ kind, container: container.name, scheme: http ? "http" : "https", port, path });
      out.patch.push({ op: "replace", path: `${at}/port`, value: PROBE_PORTS[kind] });
      if (http) out.patch.push({ op: "add", path: `${at}/path`, value: probePath(kind, container.name) });
    }
  });
  return out;
}
