import assert from "node:assert/strict";
import { test } from "node:test";
import { bindDirectionMetrics, createSidecarMetrics } from "../../../src/sidecar/metrics.ts";

test("the exposition is Prometheus text: HELP and TYPE, labelled samples, cumulative histogram buckets", () => {
  const metrics = createSidecarMetrics();
  const outbound = bindDirectionMetrics(metrics, "outbound");
  outbound.passthrough.inc();
  outbound.passthrough.inc();
  outbound.active.inc();
  outbound.bytesUp.inc(64);
  outbound.connectSeconds.observe(0.0003);
  outbound.connectSeconds.observe(2);
  metrics.errors.inc({ direction: "outbound", kind: "connect" });
  metrics.dropped.inc({ direction: "inbound", cause: 'accept:"E\\MFILE"' });
  metrics.configVersion.set(7);
  const text = metrics.registry.metrics();
  assert.match(
    text,
    /^# HELP osm_sidecar_connections_total .+\n# TYPE osm_sidecar_connections_total counter\n/m,
  );
  assert.match(text, /^osm_sidecar_connections_total\{direction="outbound",decision="passthrough"\} 2$/m);
  assert.match(text, /^osm_sidecar_connections_total\{direction="outbound",decision="mesh"\} 0$/m);
  assert.match(text, /^osm_sidecar_active_connections\{direction="outbound"\} 1$/m);
  assert.match(text, /^osm_sidecar_bytes_total\{direction="outbound",flow="upstream"\} 64$/m);
  assert.match(text, /^osm_sidecar_errors_total\{direction="outbound",kind="connect"\} 1$/m);
  assert.match(
    text,
    /^osm_sidecar_dropped_connections_total\{direction="inbound",cause="accept:\\"E\\\\MFILE\\""\} 1$/m,
  );
  assert.match(text, /^osm_sidecar_config_version 7$/m);
  const bucket = (le: string) =>
    Number(
      new RegExp(
        `^osm_sidecar_upstream_connect_seconds_bucket\\{direction="outbound",le="${le.replace(/[+.]/g, "\\$&")}"\\} (\\d+)$`,
        "m",
      ).exec(text)?.[1],
    );
  assert.equal(bucket("0.0001"), 0);
  assert.equal(bucket("0.0005"), 1);
  assert.equal(bucket("2.5"), 2);
  assert.equal(bucket("+Inf"), 2);
  assert.match(text, /^osm_sidecar_upstream_connect_seconds_count\{direction="outbound"\} 2$/m);
  assert.match(text, /^osm_sidecar_upstream_connect_seconds_sum\{direction="outbound"\} 2.0003$/m);
  assert.equal(
    metrics.registry.metric("osm_sidecar_config_version").split("\n")[2],
    "osm_sidecar_config_version 7",
  );
});
