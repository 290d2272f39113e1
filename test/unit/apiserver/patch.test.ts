import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  applyJsonPatch,
  applyMergePatch,
  applyStrategicMergePatch,
} from "../../../src/local/apiserver/patch.ts";

const deployment = {
  spec: {
    template: {
      metadata: { labels: { app: "curl" } },
      spec: {
        containers: [
          { name: "curl", image: "curl:1", command: ["sleep", "1d"], env: [{ name: "A", value: "1" }] },
          { name: "side", image: "side:1" },
        ],
      },
    },
  },
};

describe("patches", () => {
  it("merge patch deletes keys with null and replaces arrays whole", () => {
    assert.deepEqual(applyMergePatch({ a: 1, b: { c: 2, d: 3 }, l: [1, 2] }, { b: { c: null }, l: [3] }), {
      a: 1,
      b: { d: 3 },
      l: [3],
    });
  });

  it("JSON patch applies operations and rejects a failed test", () => {
    assert.deepEqual(applyJsonPatch({ a: [1] }, [{ op: "add", path: "/a/-", value: 2 }]), { a: [1, 2] });
    assert.throws(
      () => applyJsonPatch({ a: 1 }, [{ op: "test", path: "/a", value: 2 }]),
      /rejected our request/,
    );
  });

  it("strategic merge patch merges containers by name and keeps the $setElementOrder order (kubectl apply's patch)", () => {
    const patch = {
      spec: {
        template: {
          spec: {
            "$setElementOrder/containers": [{ name: "curl" }, { name: "side" }],
            containers: [{ name: "curl", command: ["sleep", "366d"] }],
          },
        },
      },
    };
    const out = applyStrategicMergePatch(deployment, patch, "Deployment") as typeof deployment;
    const containers = out.spec.template.spec.containers;
    assert.deepEqual(
      containers.map((c) => c.name),
      ["curl", "side"],
    );
    assert.deepEqual(containers[0]?.command, ["sleep", "366d"]);
    assert.equal(containers[0]?.image, "curl:1", "fields the patch does not name are kept");
    assert.deepEqual(containers[0]?.env, [{ name: "A", value: "1" }]);
  });

  it("strategic merge patch deletes a list element with $patch: delete and replaces with $patch: replace", () => {
    const del = applyStrategicMergePatch(
      deployment,
      { spec: { template: { spec: { containers: [{ name: "side", $patch: "delete" }] } } } },
      "Deployment",
    ) as typeof deployment;
    assert.deepEqual(
      del.spec.template.spec.containers.map((c) => c.name),
      ["curl"],
    );
    const rep = applyStrategicMergePatch(
      deployment,
      { spec: { template: { metadata: { labels: { $patch: "replace", x: "y" } } } } },
      "Deployment",
    ) as typeof deployment;
    assert.deepEqual(rep.spec.template.metadata.labels, { x: "y" });
  });

  it("strategic merge patch adds the restartedAt annotation of kubectl rollout restart", () => {
    const out = applyStrategicMergePatch(
      deployment,
      {
        spec: {
          template: {
            metadata: { annotations: { "kubectl.kubernetes.io/restartedAt": "2026-11-24T18:29:38Z" } },
          },
        },
      },
      "Deployment",
    ) as {
      spec: {
        template: { metadata: { annotations: Record<string, string>; labels: Record<string, string> } };
      };
    };
    assert.equal(
      out.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"],
      "2026-11-24T18:29:38Z",
    );
    assert.deepEqual(out.spec.template.metadata.labels, { app: "curl" });
  });

  it("strategic merge patch merges Service ports by port and container ports by containerPort", () => {
    const svc = applyStrategicMergePatch(
      { spec: { ports: [{ port: 80, name: "http" }] } },
      { spec: { ports: [{ port: 443, name: "https" }] } },
      "Service",
    ) as { spec: { ports: unknown[] } };
    assert.equal(svc.spec.ports.length, 2);
    const pod = applyStrategicMergePatch(
      { spec: { containers: [{ name: "c", ports: [{ containerPort: 80 }] }] } },
      { spec: { containers: [{ name: "c", ports: [{ containerPort: 80, name: "http" }] }] } },
      "Pod",
    ) as {
      spec: { containers: { ports: unknown[] }[] };
    };
    assert.deepEqual(pod.spec.containers[0]?.ports, [{ containerPort: 80, name: "http" }]);
  });
});

describe("the merge patch follows RFC 7386 (Appendix A examples)", () => {
  const cases: [target: unknown, patch: unknown, result: unknown][] = [
    [{ a: "b" }, { a: "c" }, { a: "c" }],
    [{ a: "b" }, { b: "c" }, { a: "b", b: "c" }],
    [{ a: "b" }, { a: null }, {}],
    [{ a: "b", b: "c" }, { a: null }, { b: "c" }],
    [{ a: ["b"] }, { a: "c" }, { a: "c" }],
    [{ a: "c" }, { a: ["b"] }, { a: ["b"] }],
    [{ a: { b: "c" } }, { a: { b: "d", c: null } }, { a: { b: "d" } }],
    [{ a: [{ b: "c" }] }, { a: [1] }, { a: [1] }],
    [
      ["a", "b"],
      ["c", "d"],
      ["c", "d"],
    ],
    [{ a: "b" }, ["c"], ["c"]],
    [{ a: "foo" }, null, null],
    [{ a: "foo" }, "bar", "bar"],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: "b", c: null }, { a: "b" }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  for (const [target, patch, result] of cases) {
    it(`${JSON.stringify(target)} + ${JSON.stringify(patch)} = ${JSON.stringify(result)}`, () => {
      const before = structuredClone(target);
      assert.deepEqual(applyMergePatch(target, patch), result);
      assert.deepEqual(target, before);
    });
  }
});
