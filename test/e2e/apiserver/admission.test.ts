/**
 * Admission webhooks over HTTPS with real AdmissionReview v1, driven by kubectl: a validating webhook's
 * denial text and warnings, a mutating webhook (reached through a Service + Endpoints, selected by
 * namespaceSelector) patching pods the Deployment controller creates, failurePolicy, and dry-run with
 * side effects.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { stringify } from "yaml";
import type { Obj } from "../../../src/local/apiserver/json.ts";
import { loadOrCreateIdentity } from "../../../src/local/apiserver/tls.ts";
import { until } from "../../support/poll.ts";
import { kubectlFor, ok, type ServerProcess, startServerProcess, tempDir } from "./helpers.ts";

interface Review {
  request: {
    uid: string;
    kind: { kind: string };
    operation: string;
    namespace?: string;
    object: Obj | null;
    dryRun: boolean;
  };
}

describe("admission webhooks called by the embedded API server", () => {
  const dir = tempDir("admission");
  let server: ServerProcess;
  let kubectl: ReturnType<typeof kubectlFor>;
  let webhook: Server;
  let port = 0;
  let caBundle = "";
  const reviews: Review["request"][] = [];

  before(async () => {
    const id = await loadOrCreateIdentity(`${dir.path}/webhook`, "hook.hooks.svc");
    caBundle = Buffer.from(id.caPem).toString("base64");
    webhook = createServer({ key: id.keyPem, cert: id.certPem }, (req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => {
        body += d.toString();
      });
      req.on("end", () => {
        const review = JSON.parse(body) as Review;
        const r = review.request;
        reviews.push(r);
        let response: Record<string, unknown> = { uid: r.uid, allowed: true };
        if (req.url === "/deny-pods") {
          response = { uid: r.uid, allowed: false, status: { message: "pods are not welcome here" } };
        } else if (req.url === "/validate" && r.object?.data?.bad) {
          response = {
            uid: r.uid,
            allowed: false,
            status: { code: 403, reason: "Forbidden", message: "bad data" },
          };
        } else if (req.url === "/validate") {
          response = { uid: r.uid, allowed: true, warnings: ["configmaps are watched by the test"] };
        } else if (req.url === "/mutate") {
          const patch = [{ op: "add", path: "/metadata/labels/injected", value: "true" }];
          response = {
            uid: r.uid,
            allowed: true,
            patchType: "JSONPatch",
            patch: Buffer.from(JSON.stringify(patch)).toString("base64"),
          };
        }
        const text = JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response });
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(text);
      });
    });
    await new Promise<void>((resolve) => webhook.listen(0, "127.0.0.1", resolve));
    port = (webhook.address() as AddressInfo).port;
    server = await startServerProcess(`${dir.path}/state`, { OSMT_API_CRD_DIRS: "" });
    kubectl = kubectlFor(server.kubeconfig, dir.path);
  });
  after(async () => {
    await server?.stop();
    await new Promise<void>((resolve) => (webhook ? webhook.close(() => resolve()) : resolve()));
    dir.remove();
  });

  it("reaches kubectl with a validating webhook's denial, and passes its warnings on", async () => {
    const config = {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingWebhookConfiguration",
      metadata: { name: "osmt-api-test-validate" },
      webhooks: [
        {
          name: "deny.osmt.test",
          admissionReviewVersions: ["v1"],
          sideEffects: "None",
          clientConfig: { url: `https://127.0.0.1:${port}/validate`, caBundle },
          rules: [
            {
              operations: ["CREATE", "UPDATE"],
              apiGroups: [""],
              apiVersions: ["v1"],
              resources: ["configmaps"],
            },
          ],
        },
      ],
    };
    ok(await kubectl(["apply", "-f", "-"], JSON.stringify(config)));
    const denied = await kubectl(["create", "configmap", "c1", "--from-literal=bad=1"]);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /admission webhook "deny.osmt.test" denied the request: bad data/);
    const allowed = await kubectl(["create", "configmap", "c2", "--from-literal=good=1"]);
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.match(allowed.stderr, /Warning: configmaps are watched by the test/);
    const review = reviews.find((r) => r.object?.metadata?.name === "c2");
    assert.equal(review?.operation, "CREATE");
    assert.equal(review?.kind.kind, "ConfigMap");
    assert.equal(review?.namespace, "default");
  });

  it("refuses a dry run when the webhook may have side effects", async () => {
    ok(
      await kubectl([
        "patch",
        "validatingwebhookconfiguration",
        "osmt-api-test-validate",
        "--type=json",
        "-p",
        '[{"op":"replace","path":"/webhooks/0/sideEffects","value":"Some"}]',
      ]),
    );
    const r = await kubectl(["create", "configmap", "c3", "--from-literal=good=1", "--dry-run=server"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /admission webhook "deny.osmt.test" does not support dry run/);
    ok(await kubectl(["delete", "validatingwebhookconfiguration", "osmt-api-test-validate"]));
  });

  it("patches pods the Deployment controller creates, in namespaces its namespaceSelector selects, through a Service", async () => {
    ok(await kubectl(["create", "namespace", "hooks"]));
    ok(await kubectl(["create", "namespace", "meshed"]));
    ok(await kubectl(["label", "namespace", "meshed", "inject=enabled"]));
    ok(await kubectl(["create", "namespace", "plain"]));
    const objects = [
      {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "hook", namespace: "hooks" },
        spec: { ports: [{ port: 443, targetPort: port }] },
      },
      {
        apiVersion: "v1",
        kind: "Endpoints",
        metadata: { name: "hook", namespace: "hooks" },
        subsets: [{ addresses: [{ ip: "127.0.0.1" }], ports: [{ port }] }],
      },
      {
        apiVersion: "admissionregistration.k8s.io/v1",
        kind: "MutatingWebhookConfiguration",
        metadata: { name: "osmt-api-test-mutate" },
        webhooks: [
          {
            name: "inject.osmt.test",
            admissionReviewVersions: ["v1"],
            sideEffects: "None",
            failurePolicy: "Fail",
            clientConfig: { service: { name: "hook", namespace: "hooks", path: "/mutate" }, caBundle },
            namespaceSelector: { matchLabels: { inject: "enabled" } },
            rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"] }],
          },
        ],
      },
    ];
    ok(await kubectl(["apply", "-f", "-"], objects.map((o) => stringify(o)).join("---\n")));
    const deployment = (ns: string) =>
      JSON.stringify({
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: "app", namespace: ns },
        spec: {
          selector: { matchLabels: { app: "app" } },
          template: {
            metadata: { labels: { app: "app" } },
            spec: { containers: [{ name: "c", image: "busybox", command: ["sleep", "1d"] }] },
          },
        },
      });
    ok(await kubectl(["apply", "-f", "-"], deployment("meshed")));
    ok(await kubectl(["apply", "-f", "-"], deployment("plain")));
    const label = (ns: string) =>
      until(`a pod in ${ns}`, async () => {
        const r = ok(
          await kubectl([
            "get",
            "pods",
            "-n",
            ns,
            "-l",
            "app=app",
            "-o",
            "jsonpath={range .items[*]}{.metadata.labels.injected}|{end}",
          ]),
        );
        return r === "" ? undefined : r;
      });
    assert.equal(await label("meshed"), "true|");
    assert.equal(await label("plain"), "|");
  });

  it("records the ReplicaSet's FailedCreate event with the webhook's denial", async () => {
    ok(await kubectl(["create", "namespace", "closed"]));
    const config = {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingWebhookConfiguration",
      metadata: { name: "osmt-api-test-deny-pods" },
      webhooks: [
        {
          name: "nopods.osmt.test",
          admissionReviewVersions: ["v1"],
          sideEffects: "None",
          clientConfig: { url: `https://127.0.0.1:${port}/deny-pods`, caBundle },
          namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "closed" } },
          rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"] }],
        },
      ],
    };
    ok(await kubectl(["apply", "-f", "-"], JSON.stringify(config)));
    const deployment = stringify({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "app", namespace: "closed" },
      spec: {
        selector: { matchLabels: { app: "app" } },
        template: {
          metadata: { labels: { app: "app" } },
          spec: { containers: [{ name: "c", image: "busybox" }] },
        },
      },
    });
    ok(await kubectl(["apply", "-f", "-"], deployment));
    const events = await until("a FailedCreate event", async () => {
      const out = ok(await kubectl(["get", "events", "-n", "closed"]));
      return out.includes("FailedCreate") ? out : undefined;
    });
    assert.match(
      events,
      /Warning\s+FailedCreate\s+replicaset\/app-\w+\s+Error creating: admission webhook "nopods.osmt.test" denied the request: pods are not welcome here/,
    );
    ok(await kubectl(["delete", "validatingwebhookconfiguration", "osmt-api-test-deny-pods"]));
  });

  it("fails closed with failurePolicy Fail and open with Ignore when the webhook cannot be reached", async () => {
    const config = (policy: string) =>
      JSON.stringify({
        apiVersion: "admissionregistration.k8s.io/v1",
        kind: "ValidatingWebhookConfiguration",
        metadata: { name: "osmt-api-test-dead" },
        webhooks: [
          {
            name: "dead.osmt.test",
            admissionReviewVersions: ["v1"],
            sideEffects: "None",
            failurePolicy: policy,
            timeoutSeconds: 2,
            clientConfig: { url: "https://127.0.0.1:1/dead", caBundle },
            rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["secrets"] }],
          },
        ],
      });
    ok(await kubectl(["apply", "-f", "-"], config("Fail")));
    const closed = await kubectl(["create", "secret", "generic", "s1", "--from-literal=a=b"]);
    assert.equal(closed.code, 1);
    assert.match(closed.stderr, /Internal error occurred: failed calling webhook "dead.osmt.test"/);
    ok(await kubectl(["apply", "-f", "-"], config("Ignore")));
    ok(await kubectl(["create", "secret", "generic", "s2", "--from-literal=a=b"]));
    ok(await kubectl(["delete", "validatingwebhookconfiguration", "osmt-api-test-dead"]));
  });
});
