/**
 * What a finished connection leaves behind: its access-log line and the metrics that name its policy, the
 * same for connections JS accepted (data-plane.ts) and ones the relay threads accepted and decided
 * (native-accept.ts), so the two accept paths cannot drift apart.
 */
import { formatHost } from "../net/host-port.ts";
import type { Direction } from "./data-plane.ts";
import type { Decision, RefuseReason } from "./decide.ts";
import type { AccessLog } from "./log.ts";
import type { SidecarMetrics } from "./metrics.ts";

/** One connection's decision as the access log writes it (addresses already `host:port`). */
export interface ConnectionOutcome {
  readonly src: string;
  /** The original destination; undefined when it could not be read. */
  readonly dst: string | undefined;
  readonly decision: "mesh" | "passthrough" | "refuse";
  readonly reason?: RefuseReason | undefined;
  readonly detail?: string | undefined;
  readonly egress?: string | undefined;
  readonly service?: string | undefined;
  readonly trafficTarget?: string | undefined;
  readonly sourcePod?: string | undefined;
  readonly upstream?: string | undefined;
  readonly durationMs: number;
}

/** What the relay reported: bytes, and the first error if any. */
export interface ConnectionEnd {
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly error?: string | undefined;
  readonly [field: string]: unknown;
}

export function hostPort(address: string | undefined, port: number | undefined): string {
  if (address === undefined) return "?";
  return `${formatHost(address)}:${port}`;
}

/** The outcome of a decision made in JS. */
export function outcomeOf(
  decision: Exclude<Decision, { kind: "inspect" | "inbound-http" }>,
  src: string,
  dst: string | undefined,
  durationMs: number,
): ConnectionOutcome {
  if (decision.kind === "refuse") {
    return { src, dst, decision: "refuse", reason: decision.reason, detail: decision.detail, durationMs };
  }
  return {
    src,
    dst,
    decision: decision.kind,
    ...(decision.kind === "passthrough" ? { egress: decision.egress } : { service: decision.service }),
    trafficTarget: decision.trafficTarget,
    sourcePod: decision.sourcePod,
    upstream: hostPort(decision.upstream.address, decision.upstream.port),
    durationMs,
  };
}

/** Counts the policy that allowed the connection and writes its access-log line. */
export function recordConnection(
  accessLog: AccessLog,
  metrics: SidecarMetrics,
  direction: Direction,
  outcome: ConnectionOutcome,
  end: ConnectionEnd,
): void {
  const { decision, trafficTarget } = outcome;
  if (outcome.egress !== undefined) metrics.egressAllowed.inc({ egress: outcome.egress });
  if (decision !== "refuse" && trafficTarget !== undefined) {
    metrics.trafficTargetAllowed.inc({ direction, traffic_target: trafficTarget });
  }
  accessLog.connection({
    direction,
    src: outcome.src,
    dst: outcome.dst,
    decision,
    ...(outcome.reason !== undefined ? { reason: outcome.reason } : {}),
    ...(outcome.detail !== undefined ? { detail: outcome.detail } : {}),
    ...(outcome.egress !== undefined ? { egress: outcome.egress } : {}),
    ...(outcome.service !== undefined ? { service: outcome.service } : {}),
    ...(trafficTarget !== undefined ? { trafficTarget, sourcePod: outcome.sourcePod } : {}),
    ...(outcome.upstream !== undefined ? { upstream: outcome.upstream } : {}),
    durationMs: outcome.durationMs,
    ...end,
  });
}

/** osm_sidecar_errors_total for what a relay (either) reported at the end of a connection. */
export function countRelayError(
  metrics: SidecarMetrics,
  direction: Direction,
  error: string | undefined,
): void {
  if (error === undefined || error === "client-closed") return;
  let kind = "reset";
  if (error === "connect-timeout" || error === "idle-timeout") kind = error;
  else if (error.startsWith("connect:")) kind = "connect";
  metrics.errors.inc({ direction, kind });
}
