import assert from "node:assert/strict";
import { test } from "node:test";
import {
  buildEffectivePolicy,
  canonicalPolicyText,
  type MeshConfig,
  rebuildRecordedPolicy,
} from "../../../src/config/index.ts";
import { ANNOTATION_OUTBOUND_IP_RANGE_EXCLUSION_LIST } from "../../../src/constants.ts";
import {
  formatPodExplanation,
  type PodExplainReport,
  parseDestination,
  sidecarOutcome,
} from "../../../src/guide/explain-pod.ts";
import { httpRequestOf, podTargetName } from "../../../src/guide/explain-pod-run.ts";
import { buildPlan, explain } from "../../../src/interception/index.ts";
import { meshConfig } from "../injector/builders.ts";

function report(
  policyConfig: MeshConfig,
  live: MeshConfig,
  dest: string,
  extra: Partial<PodExplainReport> = {},
): PodExplainReport {
  const destination = parseDestination(dest);
  const plan = buildPlan(buildEffectivePolicy(policyConfig), { ipv6: destination.ip.family === 6 });
  const explanation = explain(plan, { destination: destination.ip, port: destination.port });
  return {
    namespace: "curl",
    pod: "curl-1",
    destination,
    explanation,
    outcome: sidecarOutcome(destination, undefined, live.spec.traffic.enableEgress),
    proxyUidPaths: [],
    staleDiff: [],
    restart: undefined,
    kernel: { checked: true, netns: "osm-pod-5", variant: "nftables", differences: [] },
    ...extra,
  };
}

test("destinations are IP:PORT, IPv6 in brackets, and bad ones are refused naming the value", () => {
  assert.equal(parseDestination("203.0.113.10:80").port, 80);
  assert.equal(parseDestination("[2001:db8::10]:80").ip.toString(), "2001:db8::10");
  assert.throws(() => parseDestination("203.0.113.10"), /destination "203\.0\.113\.10" is not IP:PORT/);
  assert.throws(() => parseDestination("203.0.113.300:80"), /invalid address/);
  assert.throws(() => parseDestination("203.0.113.10:0"), /port outside 1-65535/);
});

test("kubectl's pod/NAME forms name the pod, anything else does not", () => {
  assert.equal(podTargetName("pod/curl-54ccc6954c-9rlvp"), "curl-54ccc6954c-9rlvp");
  assert.equal(podTargetName("po/x"), "x");
  assert.equal(podTargetName("deployment/curl"), undefined);
});

test("an excluded destination is direct, decided by the exclusion rule, from the MeshConfig field", () => {
  const config = meshConfig({
    traffic: { enableEgress: false, outboundIPRangeExclusionList: ["203.0.113.10/32"] },
  });
  const text = formatPodExplanation(report(config, config, "203.0.113.10:80"));
  assert.match(text, /^pod curl\/curl-1 → 203\.0\.113\.10:80 \(tcp, outbound\)\n/);
  assert.match(text, /verdict: direct \(not intercepted\)/);
  assert.match(text, /deciding rule \(iptables\): .*203\.0\.113\.10\/32/);
  assert.match(
    text,
    /entry 203\.0\.113\.10\/32 from: MeshConfig spec\.traffic\.outboundIPRangeExclusionList\n/,
  );
  assert.match(text, /rules in the pod's network namespace osm-pod-5 \(nftables\): as recorded/);
  assert.match(
    text,
    /policy explained: the one recorded on the pod at its admission, programmed by osm-init/,
  );
});

test("a policy the node agent applied live says so, with when", () => {
  const config = meshConfig({
    traffic: { enableEgress: false, outboundIPRangeExclusionList: ["203.0.113.10/32"] },
  });
  const text = formatPodExplanation(
    report(config, config, "203.0.113.10:80", { updatedLiveAt: "2026-12-03T16:00:00.000Z" }),
  );
  assert.match(
    text,
    /policy explained: the one recorded on the pod, applied live by the node agent at 2026-12-03T16:00:00\.000Z \(it records a policy only once the kernel accepted it\)\n/,
  );
});

test("another destination goes to the sidecar, which refuses it while egress is off", () => {
  const config = meshConfig({
    traffic: { enableEgress: false, outboundIPRangeExclusionList: ["203.0.113.10/32"] },
  });
  const text = formatPodExplanation(report(config, config, "203.0.113.11:80"));
  assert.match(text, /verdict: outbound sidecar \(redirected to port 15001\) → refused: egress is disabled/);
});

test("with egress on, the sidecar passes the connection through; a mesh service is allowed either way", () => {
  const on = meshConfig({ traffic: { enableEgress: true } });
  assert.match(formatPodExplanation(report(on, on, "203.0.113.11:80")), /→ allowed: egress is enabled/);
  const off = meshConfig({ traffic: { enableEgress: false } });
  const mesh = report(off, off, "192.0.2.20:14001", {
    outcome: sidecarOutcome(parseDestination("192.0.2.20:14001"), "Service httpbin/httpbin:14001", false),
  });
  assert.match(formatPodExplanation(mesh), /→ allowed: mesh destination Service httpbin\/httpbin:14001/);
});

test("permissive mode off: the TrafficTarget that allows a mesh destination, or none and how to allow it", () => {
  const off = meshConfig({ traffic: { enableEgress: false } });
  const destination = parseDestination("192.0.2.20:80");
  const access = {
    meshService: "Service server/server:80",
    source: "clients/allowed",
    destinations: ["server/server"],
    trafficTarget: "server/allow-allowed",
  };
  const allowed = report(off, off, "192.0.2.20:80", {
    outcome: sidecarOutcome(destination, access.meshService, false, access),
    access,
  });
  assert.match(
    formatPodExplanation(allowed),
    /→ allowed: mesh destination Service server\/server:80, by TrafficTarget server\/allow-allowed/,
  );
  const none = { ...access, trafficTarget: undefined };
  const refused = formatPodExplanation(
    report(off, off, "192.0.2.20:80", {
      outcome: sidecarOutcome(destination, none.meshService, false, none),
      access: none,
    }),
  );
  assert.match(
    refused,
    /→ refused: no TrafficTarget lets service account clients\/allowed reach Service server\/server:80 \(server\/server\); permissive traffic policy mode is off, and egress is disabled/,
  );
  assert.match(
    refused,
    /to allow it, create a TrafficTarget in namespace server with destination server\/server and source clients\/allowed/,
  );
  const on = meshConfig({ traffic: { enableEgress: true } });
  const through = formatPodExplanation(
    report(on, on, "192.0.2.20:80", {
      outcome: sidecarOutcome(destination, none.meshService, true, none),
      access: none,
    }),
  );
  assert.match(through, /→ passed through as egress: no TrafficTarget lets/);
  assert.match(through, /the destination's sidecar refuses it unless a TrafficTarget allows this source/);
});

test("a stale pod is explained with the policy it was admitted with, and warned about", () => {
  const admitted = meshConfig({ traffic: { enableEgress: false } });
  const now = meshConfig({
    traffic: { enableEgress: false, outboundIPRangeExclusionList: ["203.0.113.10/32"] },
  });
  const recordedText = canonicalPolicyText(buildEffectivePolicy(admitted));
  const policy = rebuildRecordedPolicy(recordedText, {}, {}, now);
  const destination = parseDestination("203.0.113.10:80");
  const explanation = explain(buildPlan(policy), { destination: destination.ip, port: destination.port });
  assert.equal(explanation.verdict, "outbound-sidecar");
  const text = formatPodExplanation({
    ...report(now, now, "203.0.113.10:80"),
    explanation,
    staleDiff: ["+203.0.113.10/32"],
    restart: "kubectl rollout restart deployment curl -n curl",
    kernel: { checked: false, reason: "not root" },
  });
  assert.match(text, /→ refused/);
  assert.match(
    text,
    /WARNING: the pod is stale: .* would change \+203\.0\.113\.10\/32\n {2}restart it: kubectl rollout/,
  );
  assert.match(text, /rules in the pod's network namespace: not read \(not root\)/);
});

test("a pod annotation's entry keeps its provenance in the rebuilt policy", () => {
  const key = ANNOTATION_OUTBOUND_IP_RANGE_EXCLUSION_LIST;
  const config = meshConfig({ traffic: {} });
  const admitted = buildEffectivePolicy(config, { podAnnotations: { [key]: "192.0.2.7/32" } });
  const policy = rebuildRecordedPolicy(canonicalPolicyText(admitted), { [key]: "192.0.2.7/32" }, {}, config);
  const destination = parseDestination("192.0.2.7:443");
  const explanation = explain(buildPlan(policy), { destination: destination.ip, port: destination.port });
  assert.equal(explanation.verdict, "direct");
  assert.deepEqual(explanation.provenance, [{ source: "annotation", key }]);
});

test("with egress disabled, explain names every container that can still switch to the proxy uid", () => {
  const config = meshConfig({ traffic: { enableEgress: false } });
  const path =
    'container "curl" runs as root with CAP_SETUID: it can switch to uid 1500 (e.g. setpriv --reuid 1500)';
  const text = formatPodExplanation(report(config, config, "203.0.113.12:80", { proxyUidPaths: [path] }));
  assert.match(text, /refused: egress is disabled/);
  assert.match(
    text,
    /WARNING: egress is disabled, but a process that switches to uid 1500 \(the sidecar's\) goes out directly/,
  );
  assert.ok(text.includes(`  ${path}\n`));
  assert.match(text, /osm-ts\.io\/egress-strict: enabled/);
  assert.doesNotMatch(formatPodExplanation(report(config, config, "203.0.113.12:80")), /WARNING/);
});

test("egress disabled: the Egress that allows a destination, or what no Egress allows; http/https ports by --host", () => {
  const off = meshConfig({ traffic: { enableEgress: false } });
  const policy = {
    serviceAccount: "curl/curl",
    rules: [
      {
        egress: "curl/range-80",
        hosts: [],
        ipAddresses: ["203.0.113.10/32"],
        ports: [{ number: 80, protocol: "tcp" as const }],
      },
      {
        egress: "curl/httpbin-443",
        hosts: ["httpbin.org"],
        ipAddresses: [],
        ports: [{ number: 443, protocol: "https" as const }],
      },
    ],
  };
  const explainTo = (dest: string, host?: string) =>
    formatPodExplanation(
      report(off, off, dest, {
        outcome: sidecarOutcome(parseDestination(dest), undefined, false, undefined, {
          policy,
          ...(host === undefined ? {} : { host }),
        }),
      }),
    );
  assert.match(
    explainTo("203.0.113.10:80"),
    /→ allowed: Egress curl\/range-80 allows it \(egress is disabled\)/,
  );
  assert.match(
    explainTo("203.0.113.11:80"),
    /→ refused: egress is disabled and no Egress for service account curl allows 203\.0\.113\.11:80/,
  );
  assert.match(explainTo("203.0.113.11:443", "httpbin.org"), /→ allowed: Egress curl\/httpbin-443 allows it/);
  assert.match(
    explainTo("203.0.113.11:443", "example.org"),
    /→ refused: egress is disabled and no Egress for service account curl allows host example\.org on 203\.0\.113\.11:443/,
  );
  assert.match(
    explainTo("203.0.113.11:443"),
    /depends on the TLS server name or Host header: Egress curl\/httpbin-443/,
  );
});

test("an http Egress with HTTPRouteGroup matches: the match that holds for --method/--path, or 404, as the sidecar decides", () => {
  const off = meshConfig({ traffic: { enableEgress: false } });
  const policy = {
    serviceAccount: "curl/curl",
    rules: [
      {
        egress: "curl/httpbin-80",
        hosts: ["httpbin.org"],
        ipAddresses: [],
        ports: [{ number: 80, protocol: "http" as const }],
        httpMatches: [
          { routeGroup: "curl/egress-http-route", name: "get", pathRegex: "/get" },
          {
            routeGroup: "curl/egress-http-route",
            name: "post-anything",
            pathRegex: "/anything.*",
            methods: ["POST"],
          },
        ],
      },
      {
        egress: "curl/any-80",
        hosts: ["example.org"],
        ipAddresses: [],
        ports: [{ number: 80, protocol: "http" as const }],
      },
    ],
  };
  const explainTo = (host: string, request?: { method?: string; path?: string }) =>
    formatPodExplanation(
      report(off, off, "203.0.113.10:80", {
        outcome: sidecarOutcome(parseDestination("203.0.113.10:80"), undefined, false, undefined, {
          policy,
          host,
          ...(request === undefined ? {} : { request }),
        }),
      }),
    );
  const allowed = explainTo("httpbin.org", { path: "/get" });
  assert.match(
    allowed,
    /→ allowed: Egress curl\/httpbin-80 allows it \(egress is disabled\)\n {2}by HTTPRouteGroup match egress-http-route\/get: \/get\n/,
  );
  assert.match(
    explainTo("httpbin.org", { method: "POST", path: "/anything/x?y=1" }),
    /by HTTPRouteGroup match egress-http-route\/post-anything: POST \/anything\.\*/,
  );
  // The path matches the whole path (query excluded), and the method must be one listed.
  for (const request of [
    { path: "/status/200" },
    { path: "/get/more" },
    { method: "GET", path: "/anything" },
  ]) {
    const text = explainTo("httpbin.org", request);
    assert.match(
      text,
      new RegExp(
        `→ answered 404 by the sidecar: Egress curl/httpbin-80 allows the host, but none of its HTTPRouteGroup matches holds for ${request.method ?? "GET"} ${request.path.replaceAll("/", "\\/")}\\n  matches: egress-http-route/get: /get; egress-http-route/post-anything: POST /anything\\.\\*`,
      ),
    );
  }
  // No request asked about: allowed for the requests its matches admit, and says how to check one.
  assert.match(
    explainTo("httpbin.org"),
    /→ allowed: Egress curl\/httpbin-80 allows it \(egress is disabled\)\n {2}for requests matching egress-http-route\/get: \/get; egress-http-route\/post-anything: POST \/anything\.\*; others are answered 404 \(check one with --path, --method\)/,
  );
  // An Egress without matches allows any request to its host.
  const any = explainTo("example.org", { path: "/status/500" });
  assert.match(any, /→ allowed: Egress curl\/any-80 allows it \(egress is disabled\)\n/);
  assert.doesNotMatch(any, /HTTPRouteGroup/);
});

test("--method and --path need --host, a path starting with /, a method in capitals", () => {
  assert.equal(httpRequestOf({}), undefined);
  assert.deepEqual(httpRequestOf({ host: "httpbin.org", path: "/get" }), { path: "/get" });
  assert.throws(
    () => httpRequestOf({ path: "/get" }),
    /--method and --path describe an http request: they need --host/,
  );
  assert.throws(
    () => httpRequestOf({ host: "httpbin.org", path: "get" }),
    (e: Error & { hint?: string }) =>
      /--path "get" is not a request path/.test(e.message) && /--path \/get/.test(e.hint ?? ""),
  );
  assert.throws(
    () => httpRequestOf({ host: "httpbin.org", method: "get" }),
    (e: Error & { hint?: string }) =>
      /--method "get" is not an HTTP method/.test(e.message) &&
      /did you mean --method GET\?/.test(e.hint ?? ""),
  );
});
