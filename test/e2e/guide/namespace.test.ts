import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { AppsV1Api, CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { startTestApiServer, type TestApiServer } from "../../support/apiserver.ts";
import { type Ran, run } from "../../support/run.ts";

const osm = new URL("../../../bin/osm", import.meta.url).pathname;

let dir: string;
let server: TestApiServer;
let env: NodeJS.ProcessEnv;

/** `osm ...` as a user runs it; returns what it printed. */
function osmRun(...args: string[]): Promise<Ran> {
  return run(osm, args, { env });
}

/** The real kubectl's view of a namespace's labels and annotations. */
async function kubectlMeta(
  ns: string,
): Promise<{ labels: Record<string, string>; annotations: Record<string, string> }> {
  const r = await run("kubectl", ["get", "namespace", ns, "-o", "json"], { env });
  assert.equal(r.code, 0, r.stderr);
  const meta = (
    JSON.parse(r.stdout) as {
      metadata: { labels?: Record<string, string>; annotations?: Record<string, string> };
    }
  ).metadata;
  return { labels: meta.labels ?? {}, annotations: meta.annotations ?? {} };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "osmt-gd-ns-"));
  let kc: KubeConfig;
  server = await startTestApiServer(dir, "osmt-gd");
  ({ env, kc } = server);
  const core = kc.makeApiClient(CoreV1Api);
  for (const name of ["osm-system", "osmt-gd-a", "osmt-gd-b", "osmt-gd-c"]) {
    await core.createNamespace({ body: { metadata: { name } } });
  }
  // What `osm install` leaves: the controller Deployment with OSM's labels (cmd/cli finds the mesh by them).
  await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({
    namespace: "osm-system",
    body: {
      metadata: { name: "osm-controller", labels: { app: "osm-controller", meshName: "osm" } },
      spec: {
        replicas: 0,
        selector: { matchLabels: { app: "osm-controller" } },
        template: {
          metadata: { labels: { app: "osm-controller" } },
          spec: {
            containers: [{ name: "osm-controller", image: "osm-controller", command: ["sleep", "1"] }],
          },
        },
      },
    },
  });
});

after(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("adding to a mesh that does not exist fails with OSM's message", async () => {
  const r = await osmRun("namespace", "add", "osmt-gd-a", "--mesh-name", "nope");
  assert.equal(r.code, 1);
  assert.equal(
    r.stderr,
    "Error: mesh [nope] does not exist, please specify another mesh using --mesh-name or create a new mesh\n",
  );
  assert.deepEqual((await kubectlMeta("osmt-gd-a")).labels["openservicemesh.io/monitored-by"], undefined);
});

test("osm namespace add labels the namespace and enables injection, once", async () => {
  const r = await osmRun("namespace", "add", "osmt-gd-a");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "Namespace [osmt-gd-a] successfully added to mesh [osm]\n");
  const meta = await kubectlMeta("osmt-gd-a");
  assert.equal(meta.labels["openservicemesh.io/monitored-by"], "osm");
  assert.equal(meta.annotations["openservicemesh.io/sidecar-injection"], "enabled");
  assert.equal(meta.labels["kubernetes.io/metadata.name"] ?? "osmt-gd-a", "osmt-gd-a");

  const again = await osmRun("namespace", "add", "osmt-gd-a");
  assert.equal(again.code, 0);
  assert.equal(again.stdout, "Namespace [osmt-gd-a] has already been added to mesh [osm]\n");
});

test("the controller's namespace is skipped and a missing namespace is an error", async () => {
  const r = await osmRun("namespace", "add", "osm-system");
  assert.equal(r.code, 0);
  assert.equal(
    r.stdout,
    "Namespace [osm-system] already has [osm-controller] installed and cannot be added to mesh [osm]\n",
  );
  const missing = await osmRun("namespace", "add", "osmt-gd-nope");
  assert.equal(missing.code, 1);
  assert.equal(
    missing.stderr,
    'Error: Could not add namespace [osmt-gd-nope] to mesh [osm]: namespaces "osmt-gd-nope" not found\n',
  );
});

test("--disable-sidecar-injection adds the namespace with injection disabled", async () => {
  const r = await osmRun("namespace", "add", "osmt-gd-b", "--disable-sidecar-injection");
  assert.equal(r.stdout, "Namespace [osmt-gd-b] successfully added to mesh [osm]\n");
  const meta = await kubectlMeta("osmt-gd-b");
  assert.equal(meta.labels["openservicemesh.io/monitored-by"], "osm");
  assert.equal(meta.annotations["openservicemesh.io/sidecar-injection"], "disabled");
});

test("osm namespace list prints OSM's table, and says so when a mesh has none", async () => {
  const r = await osmRun("namespace", "list");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    r.stdout,
    "NAMESPACE   MESH   SIDECAR-INJECTION   \n" +
      "osmt-gd-a   osm    enabled             \n" +
      "osmt-gd-b   osm    disabled            \n",
  );
  assert.equal(
    (await osmRun("namespace", "list", "--mesh-name", "other")).stdout,
    "No namespaces in mesh [other]\n",
  );
});

test("an ignored namespace cannot be added", async () => {
  const r = await osmRun("namespace", "ignore", "osmt-gd-c");
  assert.equal(r.stdout, "Successfully configured namespace [osmt-gd-c] to be ignored\n");
  assert.equal((await kubectlMeta("osmt-gd-c")).labels["openservicemesh.io/ignore"], "true");
  const add = await osmRun("namespace", "add", "osmt-gd-c");
  assert.equal(add.code, 1);
  assert.equal(add.stderr, "Error: Cannot add ignored namespace\n");
});

test("osm namespace remove checks the mesh, removes the label and annotation, and is idempotent", async () => {
  const wrong = await osmRun("namespace", "remove", "osmt-gd-a", "--mesh-name", "other");
  assert.equal(wrong.code, 1);
  assert.equal(
    wrong.stderr,
    "Error: Namespace belongs to mesh [osm], not mesh [other]. Please specify the correct mesh\n",
  );
  const r = await osmRun("namespace", "remove", "osmt-gd-a");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "Namespace [osmt-gd-a] successfully removed from mesh [osm]\n");
  const meta = await kubectlMeta("osmt-gd-a");
  assert.equal(meta.labels["openservicemesh.io/monitored-by"], undefined);
  assert.equal(meta.annotations["openservicemesh.io/sidecar-injection"], undefined);
  assert.equal(
    (await osmRun("namespace", "remove", "osmt-gd-a")).stdout,
    "Namespace [osmt-gd-a] already does not belong to any mesh\n",
  );
});
