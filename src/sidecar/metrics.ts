/**
 * The sidecar's Prometheus metrics and their text exposition (`/stats/prometheus`, format 0.0.4).
 *
 * Why hand-written: prom-client cost every pod ~3 MB of RSS (bench/README.md) for what the sidecar uses of
 * it, counters, gauges and one histogram with fixed labels, about a hundred lines here. Each registry is
 * its own, so two sidecars in one process (tests) never collide.
 */

type Labels<T extends string> = Partial<Record<T, string | number>>;

/** `{a="x",b="y"}` with Prometheus' escapes; "" without labels. */
function labelText(labels: Record<string, string | number | undefined>): string {
  const parts: string[] = [];
  for (const [name, value] of Object.entries(labels)) {
    if (value === undefined) continue;
    const escaped = String(value).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
    parts.push(`${name}="${escaped}"`);
  }
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}

interface Metric {
  readonly name: string;
  render(): string;
}

export class Registry {
  readonly contentType = "text/plain; version=0.0.4; charset=utf-8";
  readonly #metrics: Metric[] = [];
  readonly #collectors: Array<() => void> = [];

  register(metric: Metric): void {
    this.#metrics.push(metric);
  }

  /** Runs `collect` before every rendering: brings values kept elsewhere (the relay threads') up to date. */
  beforeRender(collect: () => void): void {
    this.#collectors.push(collect);
  }

  /** The exposition text of every metric, in registration order. */
  metrics(): string {
    for (const collect of this.#collectors) collect();
    return this.#metrics.map((metric) => metric.render()).join("\n");
  }

  /** One metric's exposition text ("" when there is none by that name). */
  metric(name: string): string {
    for (const collect of this.#collectors) collect();
    return this.#metrics.find((metric) => metric.name === name)?.render() ?? "";
  }
}

interface MetricOptions<T extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly T[];
  readonly registry: Registry;
}

/** Counter or gauge: one value per label set (a metric without labels starts at 0 and is always shown). */
class Scalar<T extends string> implements Metric {
  readonly name: string;
  readonly #header: string;
  readonly #values = new Map<string, { value: number }>();

  constructor(options: MetricOptions<T>, type: "counter" | "gauge") {
    this.name = options.name;
    this.#header = `# HELP ${options.name} ${options.help}\n# TYPE ${options.name} ${type}\n`;
    if ((options.labelNames ?? []).length === 0) this.#values.set("", { value: 0 });
    options.registry.register(this);
  }

  /** The cell of one label set, created at 0 (bind it once, update it per connection without hashing). */
  protected cell(labels: Labels<T> = {}): { value: number } {
    const key = labelText(labels);
    let cell = this.#values.get(key);
    if (cell === undefined) {
      cell = { value: 0 };
      this.#values.set(key, cell);
    }
    return cell;
  }

  render(): string {
    let out = this.#header;
    for (const [labels, cell] of this.#values) out += `${this.name}${labels} ${formatValue(cell.value)}\n`;
    return out;
  }
}

export class Counter<T extends string = string> extends Scalar<T> {
  constructor(options: MetricOptions<T>) {
    super(options, "counter");
  }

  inc(labels?: Labels<T>, value = 1): void {
    this.cell(labels).value += value;
  }

  labels(labels: Labels<T>): { inc(value?: number): void } {
    const cell = this.cell(labels);
    return {
      inc: (value = 1) => {
        cell.value += value;
      },
    };
  }
}

export class Gauge<T extends string = string> extends Scalar<T> {
  constructor(options: MetricOptions<T>) {
    super(options, "gauge");
  }

  set(value: number, labels?: Labels<T>): void {
    this.cell(labels).value = value;
  }

  labels(labels: Labels<T>): { inc(): void; dec(): void; add(value: number): void } {
    const cell = this.cell(labels);
    return {
      inc: () => {
        cell.value += 1;
      },
      dec: () => {
        cell.value -= 1;
      },
      add: (value: number) => {
        cell.value += value;
      },
    };
  }
}

interface HistogramCell {
  readonly counts: number[];
  sum: number;
  count: number;
}

export class Histogram<T extends string = string> implements Metric {
  readonly name: string;
  readonly #header: string;
  readonly #buckets: readonly number[];
  readonly #cells = new Map<string, HistogramCell>();

  constructor(options: MetricOptions<T> & { readonly buckets: readonly number[] }) {
    this.name = options.name;
    this.#header = `# HELP ${options.name} ${options.help}\n# TYPE ${options.name} histogram\n`;
    this.#buckets = [...options.buckets].sort((a, b) => a - b);
    options.registry.register(this);
  }

  labels(labels: Labels<T>): { observe(value: number): void } {
    const key = labelText(labels);
    let cell = this.#cells.get(key);
    if (cell === undefined) {
      cell = { counts: this.#buckets.map(() => 0), sum: 0, count: 0 };
      this.#cells.set(key, cell);
    }
    const bound = cell;
    return {
      observe: (value: number) => {
        for (let i = 0; i < this.#buckets.length; i++) if (value <= this.#buckets[i]!) bound.counts[i]! += 1;
        bound.sum += value;
        bound.count += 1;
      },
    };
  }

  render(): string {
    let out = this.#header;
    for (const [key, cell] of this.#cells) {
      const labels = key === "" ? "" : key.slice(1, -1);
      const withLe = (le: string) => `{${labels ? `${labels},` : ""}le="${le}"}`;
      this.#buckets.forEach((bound, i) => {
        out += `${this.name}_bucket${withLe(formatValue(bound))} ${cell.counts[i]}\n`;
      });
      out += `${this.name}_bucket${withLe("+Inf")} ${cell.count}\n`;
      out += `${this.name}_sum${key} ${cell.sum}\n${this.name}_count${key} ${cell.count}\n`;
    }
    return out;
  }
}

export interface SidecarMetrics {
  readonly registry: Registry;
  /** Accepted connections by direction (outbound|inbound) and decision (mesh|passthrough|refuse). */
  readonly connections: Counter<"direction" | "decision">;
  readonly refused: Counter<"direction" | "reason">;
  /** Connections an Egress policy allowed, by Egress (`<namespace>/<name>`). */
  readonly egressAllowed: Counter<"egress">;
  /** Connections a TrafficTarget allowed (permissive mode off), by direction and TrafficTarget. */
  readonly trafficTargetAllowed: Counter<"direction" | "traffic_target">;
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
  return {
    registry,
    connections: new Counter({
      name: "osm_sidecar_connections_total",
      help: "Connections accepted, by direction and decision",
      labelNames: ["direction", "decision"],
      registry,
    }),
    refused: new Counter({
      name: "osm_sidecar_refused_connections_total",
      help: "Connections reset by the sidecar, by reason",
      labelNames: ["direction", "reason"],
      registry,
    }),
    egressAllowed: new Counter({
      name: "osm_sidecar_egress_policy_connections_total",
      help: "Outbound connections allowed by an Egress policy while egress is disabled, by Egress",
      labelNames: ["egress"],
      registry,
    }),
    trafficTargetAllowed: new Counter({
      name: "osm_sidecar_traffic_target_connections_total",
      help: "Mesh connections a TrafficTarget allowed with permissive traffic policy mode off, by TrafficTarget",
      labelNames: ["direction", "traffic_target"],
      registry,
    }),
    active: new Gauge({
      name: "osm_sidecar_active_connections",
      help: "Connections open now",
      labelNames: ["direction"],
      registry,
    }),
    bytes: new Counter({
      name: "osm_sidecar_bytes_total",
      help: "Bytes relayed; flow=upstream is client to upstream, flow=downstream the reverse",
      labelNames: ["direction", "flow"],
      registry,
    }),
    errors: new Counter({
      name: "osm_sidecar_errors_total",
      help: "Connection errors by kind (connect, connect-timeout, reset, idle-timeout, original-dst, relay)",
      labelNames: ["direction", "kind"],
      registry,
    }),
    dropped: new Counter({
      name: "osm_sidecar_dropped_connections_total",
      help: "accept() failures (cause accept:EMFILE|ENFILE|ENOBUFS|ENOMEM; each dropped at least one connection unseen) and connections the relay threads handed over that Node could not take (handoff:<code>)",
      labelNames: ["direction", "cause"],
      registry,
    }),
    connectSeconds: new Histogram({
      name: "osm_sidecar_upstream_connect_seconds",
      help: "Time to connect to the upstream",
      labelNames: ["direction"],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5],
      registry,
    }),
    configVersion: new Gauge({
      name: "osm_sidecar_config_version",
      help: "Version of the config in force (-1 before the first config)",
      registry,
    }),
    configUpdates: new Counter({
      name: "osm_sidecar_config_updates_total",
      help: "Config documents received, by result (applied|stale|invalid)",
      labelNames: ["result"],
      registry,
    }),
    outboundListenerOpen: new Gauge({
      name: "osm_sidecar_outbound_listener_open",
      help: "1 when the outbound listener accepts connections, 0 when closed (egress off and no upstreams)",
      registry,
    }),
  };
}

/** The per-connection metrics of one direction with their labels bound once (no label hashing per use). */
export interface DirectionMetrics {
  readonly active: { inc(): void; dec(): void; add(value: number): void };
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
