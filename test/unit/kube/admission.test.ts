import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { needsRotation, serviceDnsNames } from "../../../src/edge/certificates.ts";
import { buildAdmissionReview, parseAdmissionReview } from "../../../src/kube/admission.ts";
import { formatFieldError } from "../../../src/kube/meshconfig-webhook.ts";
import { parseTimeoutParam } from "../../../src/kube/webhook-server.ts";

describe("AdmissionReview v1 envelope", () => {
  test("a well-formed review is parsed; the response keeps the request's uid and apiVersion", () => {
    const parsed = parseAdmissionReview({
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      request: { uid: "u1", kind: { group: "", version: "v1", kind: "Pod" }, operation: "CREATE" },
    });
    assert.ok(parsed.ok);
    const review = buildAdmissionReview(parsed.request.uid, {
      allowed: true,
      patch: [{ op: "add", path: "/metadata/labels", value: { a: "b" } }],
      warnings: ["w"],
    });
    assert.equal(review.apiVersion, "admission.k8s.io/v1");
    assert.equal(review.response?.uid, "u1");
    assert.equal(review.response?.patchType, "JSONPatch");
    assert.deepEqual(JSON.parse(Buffer.from(review.response?.patch ?? "", "base64").toString()), [
      { op: "add", path: "/metadata/labels", value: { a: "b" } },
    ]);
    assert.deepEqual(review.response?.warnings, ["w"]);
  });

  test("an allowed decision without changes carries no patch and no empty warnings", () => {
    assert.deepEqual(buildAdmissionReview("u2", { allowed: true, patch: [], warnings: [] }).response, {
      uid: "u2",
      allowed: true,
    });
  });

  const bad: [string, unknown, RegExp][] = [
    ["not an object", [], /not a JSON object/],
    ["v1beta1", { apiVersion: "admission.k8s.io/v1beta1", kind: "AdmissionReview" }, /not supported/],
    ["wrong kind", { apiVersion: "admission.k8s.io/v1", kind: "Pod" }, /is not "AdmissionReview"/],
    ["no request", { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" }, /request is missing/],
    [
      "no uid",
      { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: { operation: "CREATE" } },
      /request\.uid is missing/,
    ],
  ];
  for (const [name, body, reason] of bad) {
    test(`a review with ${name} is refused with the reason`, () => {
      const parsed = parseAdmissionReview(body);
      assert.ok(!parsed.ok);
      assert.match(parsed.reason, reason);
    });
  }
});

describe("webhook server helpers", () => {
  test("the API server's ?timeout= is read in s, ms and m; junk is ignored", () => {
    assert.equal(parseTimeoutParam("10s"), 10_000);
    assert.equal(parseTimeoutParam("500ms"), 500);
    assert.equal(parseTimeoutParam("1m"), 60_000);
    assert.equal(parseTimeoutParam("soon"), undefined);
    assert.equal(parseTimeoutParam(null), undefined);
  });

  test("a certificate is due for rotation in the last given fraction of its life", () => {
    const cert = { notBefore: new Date(0), notAfter: new Date(3_000) };
    assert.equal(needsRotation(cert, new Date(1_999), 1 / 3), false);
    assert.equal(needsRotation(cert, new Date(2_000), 1 / 3), true);
  });

  test("the serving certificate names the service as kube-apiserver dials it", () => {
    assert.deepEqual(serviceDnsNames("osm-injector", "osm-system"), [
      "osm-injector",
      "osm-injector.osm-system",
      "osm-injector.osm-system.svc",
      "osm-injector.osm-system.svc.cluster.local",
    ]);
  });

  test("a MeshConfig field error reads as kubectl prints field errors, with our hint", () => {
    assert.equal(
      formatFieldError({
        path: "spec.traffic.outboundIPRangeExclusionList[0]",
        value: "54.91.118.50/33",
        reason: "is not a valid CIDR",
        hint: "use /32",
      }),
      'spec.traffic.outboundIPRangeExclusionList[0]: Invalid value: "54.91.118.50/33": is not a valid CIDR (hint: use /32)',
    );
  });
});
