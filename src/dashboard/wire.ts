/**
 * What the dashboard server sends its page (JSON over HTTP and server-sent events). Types only, no imports:
 * the browser bundle and the server share them.
 */

/** One exclusion or inclusion entry and where it came from (`MeshConfig spec.traffic.…`, `pod annotation …`). */
export interface ListEntry {
  readonly value: string;
  readonly from: string;
}

export interface MeshOverview {
  /** `osm-system/osm-mesh-config`. */
  readonly meshConfig: string;
  /** undefined until the MeshConfig is read; else its validation error, when it does not validate. */
  readonly error?: string;
  readonly enableEgress: boolean;
  readonly exclusions: readonly ListEntry[];
  readonly inclusions: readonly ListEntry[];
  readonly portExclusions: readonly ListEntry[];
  /** `code: message`, as the MeshConfig validator's admission warnings say them. */
  readonly warnings: readonly string[];
  /** One line per control-plane Deployment: `osm-controller: 1/1 ready`. */
  readonly controlPlane: readonly { readonly name: string; readonly ready: boolean; readonly text: string }[];
  readonly meshedPods: number;
  readonly stalePods: number;
  /** The MeshConfig's traffic section as stored (for the editor). */
  readonly traffic: Readonly<Record<string, unknown>>;
}

export interface PodRow {
  readonly namespace: string;
  readonly pod: string;
  /** `1/1`-style readiness of the `envoy` container: true once it is ready. */
  readonly sidecarReady: boolean;
  /** `nftables` or `iptables` (the pod's annotation), `-` when not recorded. */
  readonly backend: string;
  /** `current`, `updated live at …`, `STALE`, `failed (…)` or `ERROR`: `osm proxy status`'s column. */
  readonly interception: string;
  readonly state: "current" | "stale" | "error";
  /** The sidecar's log level (MeshConfig spec.sidecar.logLevel when the pod was created). */
  readonly logLevel: string;
  /** Whether its sidecar writes the access log the live stream reads (at any log level, unless `--access-log off`). */
  readonly logsDecisions: boolean;
  /** `+203.0.113.10/32` … for a stale pod; the reason for an error. */
  readonly difference: readonly string[];
  readonly restart?: string;
}

export interface DashboardState {
  readonly overview: MeshOverview;
  readonly pods: readonly PodRow[];
  /** When the server built this state (ISO time). */
  readonly at: string;
}

export type Verdict = "proxied" | "passthrough" | "refused";

/** One connection the sidecar decided (its access-log line). */
export interface DecisionEvent {
  /** Increasing per dashboard server, so the page can drop duplicates. */
  readonly seq: number;
  /** When the sidecar decided (ISO time). */
  readonly time: string;
  readonly namespace: string;
  readonly pod: string;
  readonly direction: string;
  readonly destination: string;
  readonly verdict: Verdict;
  /** For refused: the sidecar's reason, e.g. `egress-disabled`; for proxied: the mesh service. */
  readonly reason?: string;
  /** What is behind the verdict: `MeshConfig spec.traffic.enableEgress: false`, … */
  readonly because?: string;
  readonly error?: string;
}

export interface ExplainAnswer {
  /** One word: `direct`, `proxied`, `passthrough`, `refused`, `dropped`, `inbound`, `redirected`. */
  readonly verdict: string;
  /** The verdict line of `osm explain pod/…` (after `verdict: `). */
  readonly summary: string;
  /** `osm explain pod/…`'s whole text. */
  readonly text: string;
}

/** One field problem from the API server's answer (the MeshConfig validator's causes). */
export interface FieldProblem {
  readonly field: string;
  readonly value: string;
  readonly reason: string;
  readonly hint?: string;
}

export interface MeshConfigAnswer {
  /** True when the server accepted it (a dry run: it would). */
  readonly ok: boolean;
  readonly dryRun: boolean;
  readonly warnings: readonly string[];
  readonly problems: readonly FieldProblem[];
  /** The server's message when it refused (also when it gave no field causes). */
  readonly message?: string;
}
