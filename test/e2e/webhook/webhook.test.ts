/**
 * The injector's webhook server over real HTTPS on loopback: AdmissionReview v1 payloads in, verified with
 * the CA the server generated; patches applied with fast-json-patch, as kube-apiserver would.
 */
import assert from "node:assert/strict";
import { type RequestOptions, request } from "node:https";
import { after, before, describe, test } from "node:test";
import type { V1Namespace, V1Pod } from "@kubernetes/client-node";
import jsonpatch from "fast-json-patch";
import pino from "pino";
import type { AdmissionReview } from "../../../src/kube/admission.ts";
import { type RunningInjectorWebhook, startInjectorWebhook } from "../../../src/kube/injector-webhook.ts";
import type { ClusterReader } from "../../../src/kube/pod-webhook.ts";
import { namespace, OPTIONS, pod } from "../../unit/injector/builders.ts";

const logger = pino({ level: "silent" });
const MESH_CONFIG = {
  apiVersion: "config.openservicemesh.io/v1alpha2",
  kind: "MeshConfig",
  metadata: { name: "osm-mesh-config", namespace: "osm-system", resourceVersion: "7", uid: "abc" },
  spec: { traffic: { enableEgress: false } },
};

function reader(namespaces: V1Namespace[], meshConfig: unknown = MESH_CONFIG): ClusterReader {
  return {
    async getNamespace(name) {
      return namespaces.find((n) => n.metadata?.name === name);
    },
    async getMeshConfig() {
      return structuredClone(meshConfig);
    },
  };
}

interface Reply {
  status: number;
  body: string;
}

/** One HTTPS request to the webhook on loopback; resolves with the status and the whole body. */
function exchange(options: RequestOptions, data?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", timeout: 10_000, ...options }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        text += c;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.end(data);
  });
}

function post(port: number, ca: string, path: string, body: unknown, servername?: string): Promise<Reply> {
  const data = JSON.stringify(body);
  return exchange(
    {
      port,
      path,
      method: "POST",
      ca,
      ...(servername ? { servername } : {}),
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(data) },
    },
    data,
  );
}

function get(port: number, ca: string, path: string): Promise<Reply> {
  return exchange({ port, path, ca });
}

let uidCounter = 0;
function podReview(p: V1Pod, opts: { dryRun?: boolean } = {}): AdmissionReview {
  uidCounter += 1;
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: `uid-${uidCounter}`,
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      namespace: p.metadata?.namespace ?? "curl",
      operation: "CREATE",
      object: p,
      dryRun: opts.dryRun === true,
    },
  };
}

function meshConfigReview(object: unknown, operation: "CREATE" | "UPDATE" = "UPDATE", oldObject?: unknown) {
  uidCounter += 1;
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: `uid-${uidCounter}`,
      kind: { group: "config.openservicemesh.io", version: "v1alpha2", kind: "MeshConfig" },
      resource: { group: "config.openservicemesh.io", version: "v1alpha2", resource: "meshconfigs" },
      name: "osm-mesh-config",
      namespace: "osm-system",
      operation,
      object,
      ...(oldObject ? { oldObject } : {}),
    },
  };
}

function parseReview(reply: Reply): NonNullable<AdmissionReview["response"]> {
  assert.equal(reply.status, 200, reply.body);
  const review = JSON.parse(reply.body) as AdmissionReview;
  assert.equal(review.apiVersion, "admission.k8s.io/v1");
  assert.equal(review.kind, "AdmissionReview");
  assert.ok(review.response);
  return review.response;
}

function applyResponse(p: V1Pod, response: NonNullable<AdmissionReview["response"]>): V1Pod {
  if (!response.patch) return p;
  assert.equal(response.patchType, "JSONPatch");
  const ops = JSON.parse(Buffer.from(response.patch, "base64").toString("utf8")) as jsonpatch.Operation[];
  return jsonpatch.applyPatch(structuredClone(p), ops, true, false).newDocument;
}

describe("the injector webhook over HTTPS", () => {
  let hook: RunningInjectorWebhook;
  const namespaces = [
    namespace("curl"),
    namespace("plain", { labels: {}, annotations: {} }),
    namespace("metrics", {
      annotations: {
        "openservicemesh.io/sidecar-injection": "enabled",
        "openservicemesh.io/metrics": "enabled",
      },
    }),
  ];

  before(async () => {
    hook = await startInjectorWebhook({
      host: "127.0.0.1",
      port: 0,
      injector: OPTIONS,
      reader: reader(namespaces),
      dnsNames: ["osm-injector.osm-system.svc"],
      ipAddresses: ["127.0.0.1"],
      caValidityHours: 24,
      certValidityHours: 1,
      logger,
    });
  });
  after(() => hook.close());

  test("health and readiness endpoints answer ok", async () => {
    assert.deepEqual(await get(hook.port, hook.caPem(), "/healthz"), { status: 200, body: "ok" });
    assert.deepEqual(await get(hook.port, hook.caPem(), "/readyz"), { status: 200, body: "ok" });
  });

  test("the certificate verifies for the service DNS name and not without the generated CA", async () => {
    const ok = await post(
      hook.port,
      hook.caPem(),
      "/mutate-pod-creation",
      podReview(pod()),
      "osm-injector.osm-system.svc",
    );
    assert.equal(ok.status, 200);
    await assert.rejects(
      new Promise((resolve, reject) => {
        const req = request(
          { host: "127.0.0.1", port: hook.port, path: "/healthz", timeout: 5_000 },
          resolve,
        );
        req.on("error", reject);
        req.end();
      }),
      /self-signed|unable to verify|self signed/,
    );
  });

  test("a pod in an enabled namespace is admitted with a patch adding osm-init, envoy and the proxy label", async () => {
    const p = pod({ labels: { app: "curl" } });
    const response = parseReview(await post(hook.port, hook.caPem(), "/mutate-pod-creation", podReview(p)));
    assert.equal(response.allowed, true);
    const patched = applyResponse(p, response);
    assert.deepEqual(
      patched.spec?.initContainers?.map((c) => c.name),
      ["osm-init"],
    );
    assert.deepEqual(
      patched.spec?.containers.map((c) => c.name),
      ["curl", "envoy"],
    );
    assert.match(patched.metadata?.labels?.["osm-proxy-uuid"] ?? "", /^[0-9a-f-]{36}$/);
    assert.equal(patched.metadata?.labels?.["app"], "curl");
    assert.match(
      patched.metadata?.annotations?.["osm-ts.io/interception-policy-hash"] ?? "",
      /^[0-9a-f]{64}$/,
    );
    // The sidecar's credential: a projected osm-controller token volume, no secret in the PodSpec.
    assert.deepEqual(
      patched.spec?.volumes?.[0]?.projected?.sources?.[0]?.serviceAccountToken?.audience,
      "osm-controller",
    );
    assert.deepEqual(patched.spec?.containers[1]?.volumeMounts?.[0]?.readOnly, true);
  });

  test("two pods get different proxy UUIDs", async () => {
    const r1 = applyResponse(
      pod(),
      parseReview(await post(hook.port, hook.caPem(), "/mutate-pod-creation", podReview(pod()))),
    );
    const r2 = applyResponse(
      pod(),
      parseReview(await post(hook.port, hook.caPem(), "/mutate-pod-creation", podReview(pod()))),
    );
    assert.notEqual(r1.metadata?.labels?.["osm-proxy-uuid"], r2.metadata?.labels?.["osm-proxy-uuid"]);
  });

  test("a pod annotated enabled in an unmonitored namespace is admitted unchanged", async () => {
    const p = pod({ namespace: "plain", annotations: { "openservicemesh.io/sidecar-injection": "enabled" } });
    const response = parseReview(await post(hook.port, hook.caPem(), "/mutate-pod-creation", podReview(p)));
    assert.equal(response.allowed, true);
    assert.equal(response.patch, undefined);
  });

  test("a pod annotated disabled in an enabled namespace is admitted unchanged", async () => {
    const p = pod({ annotations: { "openservicemesh.io/sidecar-injection": "disabled" } });
    const response = parseReview(await post(hook.port, hook.caPem(), "/mutate-pod-creation", podReview(p)));
    assert.deepEqual(response, { uid: response.uid, allowed: true });
  });

  test("a bad sidecar-injection annotation is denied with OSM's message followed by our hint", async () => {
    const p = pod({ annotations: { "openservicemesh.io/sidecar-injection": "maybe" } });
    const response = parseReview(await post(hook.port, hook.caPem(), "/mutate-pod-creation", podReview(p)));
    assert.equal(response.allowed, false);
    assert.ok(
      response.status?.message.startsWith(
        'Invalid annotation value for key "openservicemesh.io/sidecar-injection": maybe (hint: ',
      ),
      response.status?.message,
    );
  });

  test("a bad port exclusion annotation is denied with OSM's message", async () => {
    const p = pod({ annotations: { "openservicemesh.io/outbound-port-exclusion-list": "6060, -7070" } });
    const response = parseReview(await post(hook.port, hook.caPem(), "/mutate-pod-creation", podReview(p)));
    assert.equal(response.allowed, false);
    assert.match(
      response.status?.message ?? "",
      /^Invalid port value '-7070' specified for annotation 'openservicemesh\.io\/outbound-port-exclusion-list' \(hint: /,
    );
  });

  test("a hostNetwork pod is admitted unchanged even in an enabled namespace", async () => {
    const p = pod({ hostNetwork: true });
    const response = parseReview(await post(hook.port, hook.caPem(), "/mutate-pod-creation", podReview(p)));
    assert.equal(response.allowed, true);
    assert.equal(response.patch, undefined);
  });

  test("a Windows pod gets the sidecar but no osm-init", async () => {
    const p = pod({ nodeSelector: { "kubernetes.io/os": "windows" } });
    const patched = applyResponse(
      p,
      parseReview(await post(hook.port, hook.caPem(), "/mutate-pod-creation", podReview(p))),
    );
    assert.equal(patched.spec?.initContainers, undefined);
    assert.equal(patched.spec?.containers[1]?.name, "envoy");
  });

  test("a dry-run admission returns the same mutation (no side effects either way)", async () => {
    const p = pod();
    const response = parseReview(
      await post(hook.port, hook.caPem(), "/mutate-pod-creation", podReview(p, { dryRun: true })),
    );
    assert.equal(response.allowed, true);
    const patched = applyResponse(p, response);
    assert.deepEqual(
      patched.spec?.containers.map((c) => c.name),
      ["curl", "envoy"],
    );
  });

  test("a namespace with metrics enabled gets the Prometheus annotations", async () => {
    const p = pod({ namespace: "metrics" });
    const patched = applyResponse(
      p,
      parseReview(await post(hook.port, hook.caPem(), "/mutate-pod-creation", podReview(p))),
    );
    assert.equal(patched.metadata?.annotations?.["prometheus.io/port"], "15010");
  });

  test("a MeshConfig with 54.91.118.50/33 is denied naming the field, the value and the fix", async () => {
    const bad = structuredClone(MESH_CONFIG) as Record<string, unknown>;
    bad["spec"] = { traffic: { outboundIPRangeExclusionList: ["54.91.118.50/33"] } };
    const response = parseReview(
      await post(hook.port, hook.caPem(), "/validate-meshconfig", meshConfigReview(bad)),
    );
    assert.equal(response.allowed, false);
    assert.equal(response.status?.code, 422);
    assert.equal(response.status?.reason, "Invalid");
    const message = response.status?.message ?? "";
    assert.match(message, /^MeshConfig "osm-mesh-config" is invalid: /);
    assert.match(
      message,
      /spec\.traffic\.outboundIPRangeExclusionList\[0\]: Invalid value: "54\.91\.118\.50\/33": /,
    );
    assert.match(message, /\(hint: .+\)/);
    assert.deepEqual(
      response.status?.details?.causes.map((c) => c.field),
      ["spec.traffic.outboundIPRangeExclusionList[0]"],
    );
  });

  test("every invalid MeshConfig field is reported, not only the first", async () => {
    const bad = structuredClone(MESH_CONFIG) as Record<string, unknown>;
    bad["spec"] = {
      traffic: { outboundIPRangeExclusionList: ["999.1.1.1/99"], outboundPortExclusionList: [70000] },
    };
    const response = parseReview(
      await post(hook.port, hook.caPem(), "/validate-meshconfig", meshConfigReview(bad)),
    );
    assert.equal(response.allowed, false);
    assert.equal(response.status?.details?.causes.length, 2);
  });

  test("a valid MeshConfig with a footgun is admitted with admission warnings", async () => {
    const risky = structuredClone(MESH_CONFIG) as Record<string, unknown>;
    risky["spec"] = { traffic: { outboundIPRangeExclusionList: ["0.0.0.0/0"] } };
    const response = parseReview(
      await post(hook.port, hook.caPem(), "/validate-meshconfig", meshConfigReview(risky, "CREATE")),
    );
    assert.equal(response.allowed, true);
    assert.ok(
      response.warnings?.some((w) => w.startsWith("exclude-everything:")),
      JSON.stringify(response),
    );
  });

  test("changing an init-time list warns that running pods need a restart", async () => {
    const next = structuredClone(MESH_CONFIG) as Record<string, unknown>;
    next["spec"] = { traffic: { enableEgress: false, outboundIPRangeExclusionList: ["203.0.113.10/32"] } };
    const response = parseReview(
      await post(
        hook.port,
        hook.caPem(),
        "/validate-meshconfig",
        meshConfigReview(next, "UPDATE", MESH_CONFIG),
      ),
    );
    assert.equal(response.allowed, true);
    assert.ok(
      response.warnings?.some(
        (w) => w.includes("spec.traffic.outboundIPRangeExclusionList") && w.includes("restart"),
      ),
    );
  });

  test("flipping enableEgress alone brings no restart warning (it is applied live)", async () => {
    const next = structuredClone(MESH_CONFIG) as Record<string, unknown>;
    next["spec"] = { traffic: { enableEgress: true } };
    const response = parseReview(
      await post(
        hook.port,
        hook.caPem(),
        "/validate-meshconfig",
        meshConfigReview(next, "UPDATE", MESH_CONFIG),
      ),
    );
    assert.deepEqual(response, { uid: response.uid, allowed: true });
  });

  test("a body that is not an AdmissionReview v1 is refused with 400 and the reason", async () => {
    const reply = await post(hook.port, hook.caPem(), "/mutate-pod-creation", {
      apiVersion: "admission.k8s.io/v1beta1",
      kind: "AdmissionReview",
      request: {},
    });
    assert.equal(reply.status, 400);
    assert.match(reply.body, /admission\.k8s\.io\/v1beta1/);
  });

  test("GET /metrics counts reviews by path and result and shows the certificate's remaining life", async () => {
    const reply = await get(hook.port, hook.caPem(), "/metrics");
    assert.equal(reply.status, 200);
    assert.match(
      reply.body,
      /osm_ts_injector_admissions_total\{path="\/mutate-pod-creation",result="patched"\} [1-9]/,
    );
    assert.match(
      reply.body,
      /osm_ts_injector_admissions_total\{path="\/mutate-pod-creation",result="denied"\} [1-9]/,
    );
    assert.match(
      reply.body,
      /osm_ts_injector_admissions_total\{path="\/validate-meshconfig",result="denied"\} [1-9]/,
    );
    const expiry = /^osm_ts_injector_certificate_expiry_seconds (\S+)$/m.exec(reply.body);
    assert.ok(expiry && Number(expiry[1]) > 3000 && Number(expiry[1]) <= 3600, expiry?.[0]);
  });

  test("an unknown path answers 404", async () => {
    const reply = await post(hook.port, hook.caPem(), "/mutate-nothing", podReview(pod()));
    assert.equal(reply.status, 404);
  });
});

describe("the injector webhook with a broken or slow cluster", () => {
  test("a stored MeshConfig that is invalid denies injection naming the field instead of crash-looping pods", async () => {
    const bad = { ...MESH_CONFIG, spec: { traffic: { outboundIPRangeExclusionList: ["999.1.1.1/99"] } } };
    const hook = await startInjectorWebhook({
      host: "127.0.0.1",
      port: 0,
      injector: OPTIONS,
      reader: reader([namespace("curl")], bad),
      dnsNames: ["osm-injector.osm-system.svc"],
      ipAddresses: ["127.0.0.1"],
      caValidityHours: 24,
      certValidityHours: 1,
      logger,
    });
    try {
      const response = parseReview(
        await post(hook.port, hook.caPem(), "/mutate-pod-creation", podReview(pod())),
      );
      assert.equal(response.allowed, false);
      assert.match(
        response.status?.message ?? "",
        /osm-system\/osm-mesh-config is invalid: .*999\.1\.1\.1\/99/,
      );
    } finally {
      await hook.close();
    }
  });

  test("a cluster read slower than the API server's timeout is denied within that timeout", async () => {
    const slow: ClusterReader = {
      getNamespace: (_name, signal) =>
        new Promise((_resolve, reject) => signal.addEventListener("abort", () => reject(signal.reason))),
      getMeshConfig: async () => MESH_CONFIG,
    };
    const hook = await startInjectorWebhook({
      host: "127.0.0.1",
      port: 0,
      injector: OPTIONS,
      reader: slow,
      dnsNames: ["osm-injector.osm-system.svc"],
      ipAddresses: ["127.0.0.1"],
      caValidityHours: 24,
      certValidityHours: 1,
      logger,
    });
    try {
      const started = Date.now();
      const response = parseReview(
        await post(hook.port, hook.caPem(), "/mutate-pod-creation?timeout=1s", podReview(pod())),
      );
      assert.equal(response.allowed, false);
      assert.equal(response.status?.code, 500);
      assert.ok(Date.now() - started < 5_000);
    } finally {
      await hook.close();
    }
  });

  test("readiness waits for the caBundle to be published, retrying until the configurations accept it", async () => {
    const published: string[] = [];
    let failures = 1;
    const hook = await startInjectorWebhook({
      host: "127.0.0.1",
      port: 0,
      injector: OPTIONS,
      reader: reader([]),
      publisher: {
        async publish(bundle) {
          if (failures-- > 0) throw new Error("webhook configuration not found");
          published.push(bundle);
        },
      },
      dnsNames: ["osm-injector.osm-system.svc"],
      ipAddresses: ["127.0.0.1"],
      caValidityHours: 24,
      certValidityHours: 1,
      logger,
    });
    try {
      assert.equal((await get(hook.port, hook.caPem(), "/readyz")).status, 503);
      const deadline = Date.now() + 10_000;
      while (published.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.equal((await get(hook.port, hook.caPem(), "/readyz")).status, 200);
      assert.equal(Buffer.from(published[0] ?? "", "base64").toString(), hook.caPem());
    } finally {
      await hook.close();
    }
  });
});

describe("certificate rotation", () => {
  const HOUR = 3_600_000;

  /** Starts a webhook whose clock began `hoursAgo` in the past; rotation is then checked at the real time. */
  async function agedHook(hoursAgo: number, published: string[]) {
    let clock = Date.now() - hoursAgo * HOUR;
    const hook = await startInjectorWebhook({
      host: "127.0.0.1",
      port: 0,
      injector: OPTIONS,
      reader: reader([namespace("curl")]),
      publisher: {
        async publish(bundle) {
          published.push(Buffer.from(bundle, "base64").toString());
        },
      },
      dnsNames: ["osm-injector.osm-system.svc"],
      ipAddresses: ["127.0.0.1"],
      caValidityHours: 30,
      certValidityHours: 3,
      logger,
      now: () => new Date(clock),
    });
    return { hook, setClock: (t: number) => (clock = t) };
  }

  test("nothing rotates while certificates are young", async () => {
    const { hook } = await agedHook(0, []);
    try {
      const serving = hook.serving();
      await hook.checkRotation();
      assert.equal(hook.serving(), serving);
    } finally {
      await hook.close();
    }
  });

  test("the serving certificate is renewed in the last third of its life, from the same CA", async () => {
    const published: string[] = [];
    const { hook, setClock } = await agedHook(2.5, published);
    try {
      const firstCa = hook.caPem();
      const firstServing = hook.serving();
      setClock(Date.now());
      await hook.checkRotation();
      assert.notEqual(hook.serving().certPem, firstServing.certPem);
      assert.ok(hook.serving().notAfter > firstServing.notAfter);
      assert.equal(hook.caPem(), firstCa);
      // New connections get the new certificate, trusted by the CA already published.
      assert.equal((await get(hook.port, firstCa, "/healthz")).status, 200);
    } finally {
      await hook.close();
    }
  });

  test("the CA rolls over by publishing new and old CA together before serving from the new one", async () => {
    const published: string[] = [];
    const { hook, setClock } = await agedHook(21, published);
    try {
      const deadline = Date.now() + 10_000;
      while (published.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const firstCa = hook.caPem();
      setClock(Date.now());
      await hook.checkRotation();
      const bundle = hook.caPem();
      assert.equal(bundle.match(/BEGIN CERTIFICATE/g)?.length, 2);
      assert.ok(bundle.endsWith(firstCa), "the old CA stays in the bundle during the rollover");
      assert.equal(published.at(-1), bundle);
      assert.equal((await get(hook.port, bundle, "/healthz")).status, 200);
    } finally {
      await hook.close();
    }
  });
});
