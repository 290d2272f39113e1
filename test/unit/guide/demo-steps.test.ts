import assert from "node:assert/strict";
import { test } from "node:test";
import { buildEgressPolicySteps } from "../../../src/guide/demo/egress-policy-steps.ts";
import type { CommandStep, Step } from "../../../src/guide/demo/runner.ts";
import { formatCommand } from "../../../src/guide/demo/shell-quote.ts";
import { buildDemoSteps, IPV4_ADDRESSES, IPV6_ADDRESSES } from "../../../src/guide/demo/steps.ts";

function commands(steps: Step[]): string[] {
  const vars = new Map([
    ["curlPod", "curl-54ccc6954c-9rlvp"],
    ["httpbinIP", "192.0.2.20"],
  ]);
  return steps
    .filter((s): s is CommandStep => s.kind === "command")
    .map((s) => formatCommand(typeof s.argv === "function" ? s.argv(vars) : s.argv));
}

const base = { osm: ["osm"], kubectl: "kubectl", examplesDir: "examples/guide", setup: [] };

test("the IPv4 demo runs the guide's own commands, in the guide's order", () => {
  const list = commands(buildDemoSteps({ ...base, addresses: IPV4_ADDRESSES }));
  const expected = [
    `kubectl patch meshconfig osm-mesh-config -n osm-system -p '{"spec":{"traffic":{"enableEgress":false}}}' --type=merge`,
    "kubectl create namespace curl",
    "osm namespace add curl",
    "kubectl apply -f examples/guide/curl.yaml -n curl",
    "kubectl get pods -n curl",
    "kubectl get pod -n curl -l app=curl -o 'jsonpath={.items[0].metadata.name}'",
    "kubectl exec -n curl curl-54ccc6954c-9rlvp -c curl -- curl -sSI --max-time 10 http://203.0.113.10:80",
    `kubectl patch meshconfig osm-mesh-config -n osm-system -p '{"spec":{"traffic":{"outboundIPRangeExclusionList":["203.0.113.10/32"]}}}' --type=merge`,
    `kubectl get meshconfig osm-mesh-config -n osm-system -o 'jsonpath={.spec.traffic.outboundIPRangeExclusionList}{"\\n"}'`,
  ];
  assert.deepEqual(list.slice(0, expected.length), expected);
  assert.ok(list.includes("kubectl rollout restart deployment curl -n curl"));
  assert.ok(list.includes("osm proxy status -n curl"));
  assert.ok(list.includes("osm explain pod/curl-54ccc6954c-9rlvp -n curl 203.0.113.11:80"));
  assert.ok(
    list.includes(
      "kubectl exec -n curl curl-54ccc6954c-9rlvp -c curl -- curl -sSI --max-time 10 http://192.0.2.20:14001",
    ),
  );
  assert.ok(
    list.some((c) => c.includes('["203.0.113.10/33"]')),
    "the invalid patch step uses /33",
  );
});

test("the IPv6 demo brackets its URLs and excludes a /128", () => {
  const list = commands(buildDemoSteps({ ...base, addresses: IPV6_ADDRESSES }));
  assert.ok(
    list.includes(
      "kubectl exec -n curl curl-54ccc6954c-9rlvp -c curl -- curl -sSI --max-time 10 'http://[2001:db8::10]:80'",
    ),
  );
  assert.ok(list.some((c) => c.includes('"outboundIPRangeExclusionList":["2001:db8::10/128"]')));
  assert.ok(list.some((c) => c.includes('["2001:db8::10/129"]')));
  assert.ok(list.includes("osm explain pod/curl-54ccc6954c-9rlvp -n curl '[2001:db8::11]:80'"));
});

test("the egress policy demo applies OSM's policies to the running pod and curls names the cluster DNS resolves", () => {
  const steps = buildEgressPolicySteps({
    osm: ["osm"],
    kubectl: "kubectl",
    examplesDir: "examples/guide",
    policiesDir: "examples/egress-policy",
    setup: [],
  });
  const list = commands(steps);
  const exec = "kubectl exec -n curl curl-54ccc6954c-9rlvp -c curl --";
  const applied = list.filter((c) => / (apply|delete) -f examples\/egress-policy\//.test(c));
  assert.deepEqual(applied, [
    "kubectl apply -f examples/egress-policy/httpbin-80.yaml",
    "kubectl delete -f examples/egress-policy/httpbin-80.yaml",
    "kubectl apply -f examples/egress-policy/httpbin-80-get.yaml",
    "kubectl delete -f examples/egress-policy/httpbin-80-get.yaml",
    "kubectl apply -f examples/egress-policy/httpbin-443.yaml",
    "kubectl delete -f examples/egress-policy/httpbin-443.yaml",
    "kubectl apply -f examples/egress-policy/tcp-443.yaml",
    "kubectl delete -f examples/egress-policy/tcp-443.yaml",
    "kubectl apply -f examples/egress-policy/ip-range-80.yaml",
    "kubectl delete -f examples/egress-policy/ip-range-80.yaml",
  ]);
  assert.ok(list.includes(`${exec} getent hosts httpbin.org`));
  assert.ok(list.includes(`${exec} curl -sSI --max-time 10 http://httpbin.org/status/200`));
  assert.ok(list.includes(`${exec} curl -sSI -k --max-time 10 https://openservicemesh.io/`));
  assert.ok(
    list.includes("osm explain pod/curl-54ccc6954c-9rlvp -n curl 203.0.113.10:80 --host httpbin.org"),
  );
  // Names come from the cluster DNS: no hand-set Host header, no --resolve, never a restart.
  const curls = list.filter((c) => c.startsWith(`${exec} curl `));
  assert.ok(curls.length >= 15);
  for (const c of curls) assert.doesNotMatch(c, /--resolve|-H |Host:|\b203\.0\.113\./);
  assert.ok(!list.some((c) => /rollout restart|delete pod/.test(c)));
  // Every apply is followed by a 200 that waits for the policy to reach the sidecar.
  for (const [i, s] of steps.entries()) {
    if (s.kind !== "command" || !/ apply /.test(commands([s])[0] ?? "")) continue;
    const next = steps[i + 1];
    assert.ok(next?.kind === "command" && next.waitUntil !== undefined, `step after ${s.title} waits`);
  }
});
