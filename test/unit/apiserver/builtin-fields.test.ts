import assert from "node:assert/strict";
import { it } from "node:test";
import { pruneUnknownBuiltinFields } from "../../../src/local/apiserver/builtin-fields.ts";

it("finds and drops unknown fields of built-in kinds at the levels it knows, and nothing else", () => {
  const deployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "curl", labells: { a: "b" } },
    spec: {
      replica: 2,
      selector: { matchLabels: { app: "curl" } },
      template: {
        metadata: { labels: { app: "curl" } },
        spec: {
          containers: [
            {
              name: "curl",
              image: "x",
              comand: ["sleep"],
              env: [{ name: "A", valu: "1" }],
              ports: [{ containerPort: 80, protocl: "TCP" }],
              livenessProbe: { anything: 1 },
            },
          ],
          securityContext: { whatever: true },
        },
      },
    },
  };
  const unknown = pruneUnknownBuiltinFields("Deployment", deployment);
  assert.deepEqual(unknown.sort(), [
    "metadata.labells",
    "spec.replica",
    "spec.template.spec.containers[0].comand",
    "spec.template.spec.containers[0].env[0].valu",
    "spec.template.spec.containers[0].ports[0].protocl",
  ]);
  assert.equal("replica" in deployment.spec, false);
  assert.deepEqual(
    deployment.spec.template.spec.containers[0]?.livenessProbe,
    { anything: 1 },
    "below the known structs: kept",
  );
  assert.deepEqual(
    pruneUnknownBuiltinFields("ConfigMap", {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "c" },
      data: {},
      spec: {},
    }),
    ["spec"],
  );
  assert.deepEqual(
    pruneUnknownBuiltinFields("Service", {
      metadata: { name: "s" },
      spec: { ports: [{ port: 80, targetPort: 8080, appProtocol: "http" }], selector: { a: "b" } },
    }),
    [],
  );
});
