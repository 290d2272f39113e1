/**
 * CustomResourceDefinitions created through the API with kubectl: the custom resource is served at once
 * (discovery, short name, printer columns), and its structural schema rejects bad values and unknown fields.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { kubectlFor, ok, type ServerProcess, startServerProcess, tempDir } from "./helpers.ts";

const CRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.test.osmt.io
spec:
  group: test.osmt.io
  scope: Namespaced
  names: {kind: Widget, listKind: WidgetList, plural: widgets, singular: widget, shortNames: [wdg]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1, maximum: 10}
              color: {type: string, enum: [red, blue], default: red}
              cidrs:
                type: array
                items: {type: string, pattern: '^[0-9.]+/[0-9]+$'}
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
`;

const widget = (spec: string) => `apiVersion: test.osmt.io/v1
kind: Widget
metadata: {name: w1, namespace: default}
spec: ${spec}
`;

describe("custom resources of a CRD created through the API", () => {
  const dir = tempDir("crd");
  let server: ServerProcess;
  let kubectl: ReturnType<typeof kubectlFor>;
  before(async () => {
    server = await startServerProcess(`${dir.path}/state`, { OSMT_API_CRD_DIRS: "" });
    kubectl = kubectlFor(server.kubeconfig, dir.path);
  });
  after(async () => {
    await server?.stop();
    dir.remove();
  });

  it("serves the new kind at once, with defaults and printer columns", async () => {
    assert.match(
      ok(await kubectl(["apply", "-f", "-"], CRD)),
      /customresourcedefinition.apiextensions.k8s.io\/widgets.test.osmt.io created/,
    );
    assert.match(
      ok(await kubectl(["apply", "-f", "-"], widget("{size: 3}"))),
      /widget.test.osmt.io\/w1 created/,
    );
    assert.equal(
      ok(await kubectl(["get", "wdg", "w1", "-o", "jsonpath={.spec.color}"])),
      "red",
      "schema default applied",
    );
    assert.match(ok(await kubectl(["get", "widgets"])), /^NAME\s+SIZE\s+AGE\nw1\s+3\s+\d+s\n$/);
    const established = ok(
      await kubectl([
        "get",
        "crd",
        "widgets.test.osmt.io",
        "-o",
        'jsonpath={.status.conditions[?(@.type=="Established")].status}',
      ]),
    );
    assert.equal(established, "True");
  });

  it("rejects values the schema forbids, naming each field as kubectl users know it", async () => {
    const r = await kubectl(["apply", "-f", "-"], widget("{size: 30, color: green, cidrs: ['10.0.0.0']}"));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /The Widget "w1" is invalid:/);
    assert.match(
      r.stderr,
      /spec.size: Invalid value: 30: spec.size in body should be less than or equal to 10/,
    );
    assert.match(r.stderr, /spec.color: Unsupported value: "green": supported values: "red", "blue"/);
    assert.match(r.stderr, /spec.cidrs\[0\]: Invalid value: "10.0.0.0"/);
    const patch = await kubectl(["patch", "widget", "w1", "--type=merge", "-p", '{"spec":{"size":"big"}}']);
    assert.match(
      patch.stderr,
      /spec.size: Invalid value: "string": spec.size in body must be of type integer: "string"/,
    );
    const missing = await kubectl([
      "patch",
      "widget",
      "w1",
      "--type=json",
      "-p",
      '[{"op":"remove","path":"/spec/size"}]',
    ]);
    assert.match(missing.stderr, /spec.size: Required value/);
  });

  it("refuses unknown fields under strict field validation", async () => {
    const r = await kubectl(["apply", "-f", "-"], widget("{size: 2, shape: round}"));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unknown field "spec.shape"/);
  });

  it("deletes the custom resources with their CRD", async () => {
    ok(await kubectl(["delete", "crd", "widgets.test.osmt.io"]));
    const r = await kubectl(["get", "widgets.test.osmt.io"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the server doesn't have a resource type "widgets"/);
  });
});
