/**
 * Pure: a sidecar's access-log line (one JSON line per connection, `src/sidecar/data-plane.ts`) → the
 * decision the live stream shows, with the MeshConfig field or condition behind it.
 */
import type { DecisionEvent, Verdict } from "./wire.ts";

/** Why the sidecar refused, in the words of what is behind it (the sidecar's `RefuseReason`s). */
const REFUSAL_CAUSES: Readonly<Record<string, string>> = {
  "egress-disabled":
    "egress is disabled (MeshConfig spec.traffic.enableEgress: false) and this is not a mesh destination",
  "connection-limit":
    "the sidecar's connection limit (MeshConfig spec.sidecar.maxDataPlaneConnections) is reached",
  "no-config": "the sidecar has no config from the controller yet (fail closed)",
  "not-redirected": "the connection reached the sidecar without being redirected",
};

const VERDICTS: Readonly<Record<string, Verdict>> = {
  mesh: "proxied",
  passthrough: "passthrough",
  refuse: "refused",
};

/**
 * The decision in one log line of pod `namespace/pod`'s sidecar, or undefined for any other line (start-up
 * messages, config changes, text that is not JSON).
 */
export function parseDecisionLine(
  line: string,
  namespace: string,
  pod: string,
  seq: number,
): DecisionEvent | undefined {
  if (!line.startsWith("{")) return undefined;
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const verdict = VERDICTS[String(entry["decision"])];
  if (entry["msg"] !== "connection" || verdict === undefined) return undefined;
  const time =
    typeof entry["time"] === "number" ? new Date(entry["time"]).toISOString() : String(entry["time"]);
  const reason =
    verdict === "refused"
      ? String(entry["reason"] ?? "")
      : verdict === "proxied"
        ? String(entry["service"] ?? "")
        : "";
  const because =
    verdict === "refused"
      ? (REFUSAL_CAUSES[reason] ?? reason)
      : verdict === "passthrough"
        ? "egress is enabled (MeshConfig spec.traffic.enableEgress: true)"
        : `mesh destination ${reason}`;
  return {
    seq,
    time,
    namespace,
    pod,
    direction: String(entry["direction"] ?? ""),
    destination: String(entry["dst"] ?? "?"),
    verdict,
    ...(reason ? { reason } : {}),
    because,
    ...(typeof entry["error"] === "string" ? { error: entry["error"] } : {}),
  };
}
