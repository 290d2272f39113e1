/**
 * The sidecar's Prometheus metrics on its own registry (never prom-client's global one, so two sidecars in
 * one process, as in tests, do not collide).
 */
import { createRequire } from "node:module";
import type * as PromClient from "prom-client";

// prom-client's index also loads Summary (tdigest), Pushgateway (node:http and node:https), default metrics
// and the cluster aggregator, none of which the sidecar uses. The four classes it needs, from their own
// modules (the same module instances the index would give).
const require = createRequire(import.meta.url);
const Counter = require("prom-client/lib/counter") as typeof PromClient.Counter;
const Gauge = require("prom-client/lib/gauge") as typeof PromClient.Gauge;
const Histogram = require("prom-client/lib/histogram") as typeof PromClient.Histogram;
const Registry = require("prom-client/lib/registry") as typeof PromClient.Registry;
type Counter<T extends string> = PromClient.Counter<T>;
type Gauge<T extends string = string> = PromClient.Gauge<T>;
type Histogram<T extends string> = PromClient.Histogram<T>;
type Registry = PromClient.Registry;

export interface SidecarMetrics {
  readonly registry: Registry;
  /** Accepted connections by direction (outbound|inbound) and decision (mesh|passthrough|refuse). */
  readonly connections: Counter<"direction" | "decision">;
  readonly refused: Counter<"direction" | "reason">;
  readonly active: Gauge<"direction">;
  /** Bytes by direction and flow: `upstream` = client→upstream, `downstream` = upstream→client. */
  readonly bytes: Counter<"direction" | "flow">;
  readonly errors: Counter<"direction" | "kind">;
  /** Connections dropped before the sidecar could see them (accept failed: out of fds or memory). */
  readonly dropped: Counter<"direction" | "cause">;
  readonly connectSeconds: Histogram<"direction">;
  readonly configVersion: Gauge;
  readonly configUpdates: Counter<"result">;
  readonly outboundListenerOpen: Gauge;
}

export function createSidecarMetrics(): SidecarMetrics {
  const registry = new Registry();
  const registers = [registry];
  return {
    registry,
    connections: new Counter({
      name: "osm_sidecar_connections_total",
      help: "Connections accepted, by direction and decision",
      labelNames: ["direction", "decision"],
      registers,
    }),
    refused: new Counter({
      name: "osm_sidecar_refused_connections_total",
      help: "Connections reset by the sidecar, by reason",
      labelNames: ["direction", "reason"],
      registers,
    }),
    active: new Gauge({
      name: "osm_sidecar_active_connections",
      help: "Connections open now",
      labelNames: ["direction"],
      registers,
    }),
    bytes: new Counter({
      name: "osm_sidecar_bytes_total",
      help: "Bytes relayed; flow=upstream is client to upstream, flow=downstream the reverse",
      labelNames: ["direction", "flow"],
      registers,
    }),
    errors: new Counter({
      name: "osm_sidecar_errors_total",
      help: "Connection errors by kind (connect, connect-timeout, reset, idle-timeout, original-dst, relay)",
      labelNames: ["direction", "kind"],
      registers,
    }),
    dropped: new Counter({
      name: "osm_sidecar_dropped_connections_total",
      help: "accept() failures (cause accept:EMFILE|ENFILE|ENOBUFS|ENOMEM); each dropped at least one connection unseen",
      labelNames: ["direction", "cause"],
      registers,
    }),
    connectSeconds: new Histogram({
      name: "osm_sidecar_upstream_connect_seconds",
      help: "Time to connect to the upstream",
      labelNames: ["direction"],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5],
      registers,
    }),
    configVersion: new Gauge({
      name: "osm_sidecar_config_version",
      help: "Version of the config in force (-1 before the first config)",
      registers,
    }),
    configUpdates: new Counter({
      name: "osm_sidecar_config_updates_total",
      help: "Config documents received, by result (applied|stale|invalid)",
      labelNames: ["result"],
      registers,
    }),
    outboundListenerOpen: new Gauge({
      name: "osm_sidecar_outbound_listener_open",
      help: "1 when the outbound listener accepts connections, 0 when closed (egress off and no upstreams)",
      registers,
    }),
  };
}

/** The per-connection metrics of one direction with their labels bound once (no label hashing per use). */
export interface DirectionMetrics {
  readonly active: { inc(): void; dec(): void };
  readonly mesh: { inc(): void };
  readonly passthrough: { inc(): void };
  readonly refuse: { inc(): void };
  readonly connectSeconds: { observe(value: number): void };
  readonly bytesUp: { inc(value: number): void };
  readonly bytesDown: { inc(value: number): void };
}

export function bindDirectionMetrics(metrics: SidecarMetrics, direction: string): DirectionMetrics {
  return {
    active: metrics.active.labels({ direction }),
    mesh: metrics.connections.labels({ direction, decision: "mesh" }),
    passthrough: metrics.connections.labels({ direction, decision: "passthrough" }),
    refuse: metrics.connections.labels({ direction, decision: "refuse" }),
    connectSeconds: metrics.connectSeconds.labels({ direction }),
    bytesUp: metrics.bytes.labels({ direction, flow: "upstream" }),
    bytesDown: metrics.bytes.labels({ direction, flow: "downstream" }),
  };
}
