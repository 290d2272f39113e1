import assert from "node:assert/strict";
import { test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { MeshError } from "../../../src/errors.ts";
import { formatCheckPods, parseNamespacedPod } from "../../../src/guide/check-pods.ts";
import type { TrafficTarget } from "../../../src/smi/schema.ts";

const pod = (namespace: string, name: string, serviceAccountName: string): V1Pod => ({
  metadata: { namespace, name },
  spec: { serviceAccountName, containers: [] },
});
const source = pod("bookbuyer", "bookbuyer-client", "bookbuyer");
const destination = pod("bookstore", "bookstore-server", "bookstore");
const target = (name: string, namespace = "bookstore"): TrafficTarget => ({
  apiVersion: "access.smi-spec.io/v1alpha3",
  kind: "TrafficTarget",
  metadata: { name, namespace },
  spec: {
    destination: { kind: "ServiceAccount", name: "bookstore", namespace: "bookstore" },
    rules: [{ kind: "TCPRoute", name: "tcp" }],
    sources: [{ kind: "ServiceAccount", name: "bookbuyer", namespace: "bookbuyer" }],
  },
});

test("permissive mode: OSM's two lines", () => {
  assert.equal(
    formatCheckPods({
      osmNamespace: "osm-system",
      permissive: true,
      source,
      destination,
      trafficTargets: [],
    }),
    "[+] Permissive mode enabled for mesh operated by osm-controller running in 'osm-system' namespace\n\n [+] Pod 'bookbuyer/bookbuyer-client' is allowed to communicate to pod 'bookstore/bookstore-server'\n",
  );
});

test("SMI mode: each TrafficTarget that allows it, or the missing policy", () => {
  const input = { osmNamespace: "osm-system", permissive: false, source, destination };
  assert.equal(
    formatCheckPods({ ...input, trafficTargets: [target("b"), target("a")] }),
    "[+] SMI traffic policy mode enabled for mesh operated by osm-controller running in osm-system namespace\n\n" +
      "[+] Pod 'bookbuyer/bookbuyer-client' is allowed to communicate to pod 'bookstore/bookstore-server' via the SMI TrafficTarget policy \"a\" in namespace bookstore\n" +
      "[+] Pod 'bookbuyer/bookbuyer-client' is allowed to communicate to pod 'bookstore/bookstore-server' via the SMI TrafficTarget policy \"b\" in namespace bookstore\n",
  );
  const denied = formatCheckPods({ ...input, trafficTargets: [target("elsewhere", "bookbuyer")] });
  assert.match(
    denied,
    /\[\+\] Pod 'bookbuyer\/bookbuyer-client' is not allowed to communicate to pod 'bookstore\/bookstore-server', missing SMI TrafficTarget policy\n$/,
  );
});

test("pods are <namespace>/<pod> or <pod> in default, as OSM parses them", () => {
  assert.deepEqual(parseNamespacedPod("a/b", "source"), { namespace: "a", name: "b" });
  assert.deepEqual(parseNamespacedPod("b", "source"), { namespace: "default", name: "b" });
  assert.throws(
    () => parseNamespacedPod("a/b/c", "destination"),
    (e: unknown) => {
      assert.ok(e instanceof MeshError);
      assert.match(e.message, /Invalid argument specified for the destination pod \[a\/b\/c\]/);
      return true;
    },
  );
});
