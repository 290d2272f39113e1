/**
 * The real kubectl against the embedded API server (child process, random port, temp state dir): every
 * kubectl call the guide makes, and the everyday ones around them.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { until } from "../../support/poll.ts";
import {
  kubeConfigFrom,
  kubectlFor,
  ok,
  type ServerProcess,
  startNodeStandIn,
  startServerProcess,
  tempDir,
} from "./helpers.ts";

const CURL_YAML = `apiVersion: v1
kind: ServiceAccount
metadata:
  name: curl
---
apiVersion: v1
kind: Service
metadata:
  name: curl
  labels:
    app: curl
spec:
  ports:
  - port: 80
    name: http
  selector:
    app: curl
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: curl
spec:
  replicas: 1
  selector:
    matchLabels:
      app: curl
  template:
    metadata:
      labels:
        app: curl
    spec:
      serviceAccountName: curl
      containers:
      - image: curlimages/curl
        imagePullPolicy: IfNotPresent
        name: curl
        command: ["sleep", "365d"]
      - image: busybox
        name: sidecar
        command: ["sleep", "365d"]
`;

const MESH_CONFIG_YAML = `apiVersion: config.openservicemesh.io/v1alpha2
kind: MeshConfig
metadata:
  name: osm-mesh-config
  namespace: osm-system
spec:
  traffic:
    enableEgress: true
    outboundIPRangeExclusionList: []
`;

describe("kubectl against the embedded API server", () => {
  const dir = tempDir("kubectl");
  let server: ServerProcess;
  let kubectl: ReturnType<typeof kubectlFor>;
  let stopNode: () => void = () => undefined;
  /** The guide's lookup of the curl pod's name (kubectl get pod -l app=curl -o jsonpath=...). */
  const curlPodName = async () =>
    ok(
      await kubectl([
        "get",
        "pod",
        "-n",
        "curl",
        "-l",
        "app=curl",
        "-o",
        "jsonpath={.items[0].metadata.name}",
      ]),
    );

  before(async () => {
    server = await startServerProcess(`${dir.path}/state`);
    kubectl = kubectlFor(server.kubeconfig, dir.path);
  });
  after(async () => {
    stopNode();
    await server?.stop();
    dir.remove();
  });

  it("answers /version with minor 32, lists the one node, and refuses a request without the token with 401", async () => {
    assert.match(ok(await kubectl(["version", "-o", "json"])), /"minor": "32"/);
    assert.match(
      ok(await kubectl(["get", "nodes"])),
      /^osm-local\s+Ready\s+control-plane\s+\d+s\s+v1\.32\.4-osmt$/m,
    );
    const r = await kubectl(["get", "ns", "--token", "wrong"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error: You must be logged in to the server/);
  });

  it("creates a namespace (protobuf body) and reports AlreadyExists the second time", async () => {
    assert.equal(ok(await kubectl(["create", "namespace", "curl"])).trim(), "namespace/curl created");
    const again = await kubectl(["create", "namespace", "curl"]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /Error from server \(AlreadyExists\): namespaces "curl" already exists/);
    assert.match(ok(await kubectl(["get", "namespaces"])), /^curl\s+Active\s+\d+s$/m);
  });

  it("applies a multi-document file, then reports every object unchanged", async () => {
    const out = ok(await kubectl(["apply", "-f", "-", "-n", "curl"], CURL_YAML));
    assert.equal(out, "serviceaccount/curl created\nservice/curl created\ndeployment.apps/curl created\n");
    const again = ok(await kubectl(["apply", "-f", "-", "-n", "curl"], CURL_YAML));
    assert.equal(
      again,
      "serviceaccount/curl unchanged\nservice/curl unchanged\ndeployment.apps/curl unchanged\n",
    );
    const sa = JSON.parse(ok(await kubectl(["get", "sa", "curl", "-n", "curl", "-o", "json"])));
    assert.match(
      sa.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"],
      /"name":"curl"/,
    );
  });

  it("runs the Deployment's pod, named <deployment>-<hash>-<suffix>, and shows it 2/2 Running once the node reports it", async () => {
    stopNode = await startNodeStandIn(kubeConfigFrom(server.kubeconfig), "curl");
    const name = await until("a running pod", async () => {
      const out = ok(await kubectl(["get", "pods", "-n", "curl"]));
      return /2\/2\s+Running/.test(out) ? out : undefined;
    });
    assert.match(name, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\n/);
    assert.match(
      name,
      /^curl-[bcdfghjklmnpqrstvwxz2456789]{10}-[bcdfghjklmnpqrstvwxz2456789]{5}\s+2\/2\s+Running\s+0\s+\d+s$/m,
    );
    const podName = await curlPodName();
    assert.match(podName, /^curl-\w{10}-\w{5}$/);
    const wide = ok(await kubectl(["get", "pods", "-n", "curl", "-o", "wide"]));
    assert.match(wide, /IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES/);
    assert.match(wide, /198\.51\.100\.\d+\s+osm-local/);
    const none = await kubectl([
      "get",
      "pod",
      "-n",
      "curl",
      "-l",
      "app=nope",
      "-o",
      "jsonpath={.items[0].metadata.name}",
    ]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /array index out of bounds/);
  });

  it("prints objects as json, yaml and jsonpath, and services with their ClusterIP from 192.0.2.0/24", async () => {
    const deploy = JSON.parse(ok(await kubectl(["get", "deployment", "curl", "-n", "curl", "-o", "json"])));
    assert.equal(deploy.kind, "Deployment");
    assert.equal(deploy.apiVersion, "apps/v1");
    assert.match(
      ok(await kubectl(["get", "sa", "curl", "-n", "curl", "-o", "yaml"])),
      /^kind: ServiceAccount$/m,
    );
    const ip = ok(await kubectl(["get", "svc", "curl", "-n", "curl", "-o", "jsonpath={.spec.clusterIP}"]));
    assert.match(ip, /^192\.0\.2\.\d+$/);
    assert.match(
      ok(await kubectl(["get", "svc", "-n", "curl"])),
      /^curl\s+ClusterIP\s+192\.0\.2\.\d+\s+<none>\s+80\/TCP\s+\d+s$/m,
    );
    const ep = await until("endpoints", async () => {
      const out = ok(
        await kubectl([
          "get",
          "endpoints",
          "curl",
          "-n",
          "curl",
          "-o",
          "jsonpath={.subsets[0].addresses[0].ip}",
        ]),
      );
      return out ? out : undefined;
    });
    assert.match(ep, /^198\.51\.100\.\d+$/);
    assert.match(ok(await kubectl(["get", "sa", "-n", "curl"])), /^default\s/m);
  });

  it("labels, annotates and patches with merge, JSON and strategic patches", async () => {
    assert.match(
      ok(await kubectl(["label", "deployment", "curl", "-n", "curl", "tier=web"])),
      /deployment.apps\/curl labeled/,
    );
    assert.match(
      ok(await kubectl(["annotate", "deployment", "curl", "-n", "curl", "note=hello"])),
      /deployment.apps\/curl annotated/,
    );
    assert.equal(
      ok(
        await kubectl([
          "get",
          "deploy",
          "curl",
          "-n",
          "curl",
          "-o",
          "jsonpath={.metadata.labels.tier}/{.metadata.annotations.note}",
        ]),
      ),
      "web/hello",
    );
    assert.match(
      ok(
        await kubectl([
          "patch",
          "sa",
          "curl",
          "-n",
          "curl",
          "--type=merge",
          "-p",
          '{"metadata":{"labels":{"a":"1"}}}',
        ]),
      ),
      /patched/,
    );
    assert.match(
      ok(
        await kubectl([
          "patch",
          "sa",
          "curl",
          "-n",
          "curl",
          "--type=merge",
          "-p",
          '{"metadata":{"labels":{"a":"1"}}}',
        ]),
      ),
      /patched \(no change\)/,
    );
    assert.match(
      ok(
        await kubectl([
          "patch",
          "sa",
          "curl",
          "-n",
          "curl",
          "--type=json",
          "-p",
          '[{"op":"add","path":"/metadata/labels/b","value":"2"}]',
        ]),
      ),
      /patched/,
    );
    ok(
      await kubectl([
        "patch",
        "svc",
        "curl",
        "-n",
        "curl",
        "--type=strategic",
        "-p",
        '{"spec":{"ports":[{"port":8080,"name":"alt"}]}}',
      ]),
    );
    const ports = ok(
      await kubectl(["get", "svc", "curl", "-n", "curl", "-o", "jsonpath={.spec.ports[*].port}"]),
    );
    assert.equal(
      ports,
      "80 8080",
      "strategic merge adds to the list by its merge key instead of replacing it",
    );
    assert.equal(
      ok(await kubectl(["get", "sa", "curl", "-n", "curl", "-o", "jsonpath={.metadata.labels}"])),
      '{"a":"1","b":"2"}',
    );
  });

  it("execs in a container: output, stdin, and the exit code through the error channel", async () => {
    const pod = await curlPodName();
    const r = await kubectl([
      "exec",
      "-n",
      "curl",
      pod,
      "-c",
      "curl",
      "--",
      "sh",
      "-c",
      "echo out; echo err >&2; exit 7",
    ]);
    assert.equal(r.code, 7);
    assert.equal(r.stdout, "out\n");
    assert.match(r.stderr, /err\n/);
    assert.match(r.stderr, /command terminated with exit code 7/);
    const cat = await kubectl(["exec", "-i", "-n", "curl", pod, "-c", "curl", "--", "cat"], "piped stdin\n");
    assert.equal(cat.stdout, "piped stdin\n");
    assert.equal(cat.code, 0);
    const bad = await kubectl(["exec", "-n", "curl", pod, "-c", "nosuch", "--", "true"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /container nosuch is not valid for pod/);
  });

  it("prints logs of a container, honouring --tail", async () => {
    const pod = await curlPodName();
    assert.equal(
      ok(await kubectl(["logs", "-n", "curl", pod, "-c", "curl"])),
      `log line 1 from ${pod}/curl\nlog line 2\nlog line 3\n`,
    );
    assert.equal(ok(await kubectl(["logs", "-n", "curl", pod, "-c", "sidecar", "--tail=1"])), "log line 3\n");
    const missing = await kubectl(["logs", "-n", "curl", "nopod"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /pods "nopod" not found/);
  });

  it("restarts a Deployment with rollout restart and waits for it with rollout status", async () => {
    const before_ = await curlPodName();
    assert.equal(
      ok(await kubectl(["rollout", "restart", "deployment", "curl", "-n", "curl"])).trim(),
      "deployment.apps/curl restarted",
    );
    const status = ok(
      await kubectl(["rollout", "status", "deployment", "curl", "-n", "curl", "--timeout=20s"]),
    );
    assert.match(status, /deployment "curl" successfully rolled out/);
    const after_ = await until("the old pod to go", async () => {
      const names = ok(
        await kubectl([
          "get",
          "pod",
          "-n",
          "curl",
          "-l",
          "app=curl",
          "-o",
          "jsonpath={.items[*].metadata.name}",
        ]),
      ).split(" ");
      return names.length === 1 && names[0] !== before_ ? names[0] : undefined;
    });
    assert.notEqual(after_, before_);
    assert.notEqual(after_?.split("-")[1], before_.split("-")[1], "a new pod-template-hash");
    assert.equal(
      ok(await kubectl(["get", "rs", "-n", "curl", "-o", "jsonpath={.items[*].spec.replicas}"]))
        .split(" ")
        .sort()
        .join(" "),
      "0 1",
    );
  });

  it("scales a Deployment and shows the new replicas", async () => {
    assert.match(
      ok(await kubectl(["scale", "deployment", "curl", "-n", "curl", "--replicas=3"])),
      /deployment.apps\/curl scaled/,
    );
    await until("3 ready replicas", async () => {
      const out = ok(await kubectl(["get", "deploy", "curl", "-n", "curl"]));
      return /^curl\s+3\/3\s+3\s+3\s/m.test(out) ? out : undefined;
    });
    ok(await kubectl(["scale", "deployment", "curl", "-n", "curl", "--replicas=1"]));
    await until("1 pod", async () => {
      const names = ok(
        await kubectl(["get", "pod", "-n", "curl", "-o", "jsonpath={.items[*].metadata.name}"]),
      );
      return names.split(" ").length === 1 ? names : undefined;
    });
  });

  it("records what the controllers did as events", async () => {
    const events = ok(await kubectl(["get", "events", "-n", "curl"]));
    assert.match(
      events,
      /Normal\s+ScalingReplicaSet\s+deployment\/curl\s+Scaled up replica set curl-\w+ to 1/,
    );
    assert.match(events, /Normal\s+SuccessfulCreate\s+replicaset\/curl-\w+\s+Created pod: curl-\w+-\w+/);
  });

  it("fails rollout status once a Deployment passes its progress deadline", async () => {
    const stuck = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: stuck
  namespace: default
spec:
  progressDeadlineSeconds: 1
  selector: {matchLabels: {app: stuck}}
  template:
    metadata: {labels: {app: stuck}}
    spec:
      containers: [{name: c, image: busybox, command: [sleep, 1d]}]
`;
    ok(await kubectl(["apply", "-f", "-"], stuck));
    const r = await kubectl(["rollout", "status", "deployment", "stuck", "--timeout=20s"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error: deployment "stuck" exceeded its progress deadline/);
    ok(await kubectl(["delete", "deployment", "stuck"]));
  });

  it("streams changes to kubectl get --watch as table rows", async () => {
    ok(await kubectl(["create", "configmap", "listed", "-n", "curl"]));
    const child = spawn("kubectl", ["get", "configmaps", "-n", "curl", "--watch"], {
      env: {
        PATH: process.env.PATH ?? "",
        HOME: dir.path,
        KUBECONFIG: server.kubeconfig,
        KUBECACHEDIR: `${dir.path}/cache`,
      },
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    try {
      // The list comes first (one row), then the watch from its resourceVersion.
      await until("the listed row", async () =>
        /^NAME\s+DATA\s+AGE\nlisted\s+0\s+\d+s$/m.test(out) ? true : undefined,
      );
      ok(await kubectl(["create", "configmap", "watched", "-n", "curl", "--from-literal=a=b"]));
      await until("the added row", async () => (/^watched\s+1\s+\d+s$/m.test(out) ? true : undefined));
      ok(await kubectl(["delete", "configmap", "watched", "-n", "curl"]));
      await until("the deleted row", async () =>
        (out.match(/^watched\s+1/gm) ?? []).length >= 2 ? true : undefined,
      );
    } finally {
      child.kill("SIGTERM");
    }
  });

  it("deletes objects, cascading from the Deployment to its pods, and reports NotFound after", async () => {
    assert.match(
      ok(await kubectl(["delete", "deployment", "curl", "-n", "curl"])),
      /deployment.apps "curl" deleted/,
    );
    await until("no pods", async () =>
      ok(await kubectl(["get", "pods", "-n", "curl", "-o", "name"])) === "" ? true : undefined,
    );
    const r = await kubectl(["get", "deployment", "curl", "-n", "curl"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Error from server \(NotFound\): deployments.apps "curl" not found/);
    assert.match(
      ok(await kubectl(["delete", "namespace", "curl", "--timeout=20s"])),
      /namespace "curl" deleted/,
    );
    const gone = await kubectl(["get", "namespace", "curl"]);
    assert.match(gone.stderr, /namespaces "curl" not found/);
    const protectedNs = await kubectl(["delete", "namespace", "default"]);
    assert.match(
      protectedNs.stderr,
      /Error from server \(Forbidden\): namespaces "default" is forbidden: this namespace may not be deleted/,
    );
  });

  it("refuses unknown fields of built-in kinds as kubectl's strict validation expects, and warns without it", async () => {
    const typo = `apiVersion: apps/v1
kind: Deployment
metadata: {name: typo, namespace: default}
spec:
  replica: 1
  selector: {matchLabels: {app: typo}}
  template:
    metadata: {labels: {app: typo}}
    spec: {containers: [{name: c, image: busybox}]}
`;
    const r = await kubectl(["apply", "-f", "-", "--dry-run=server"], typo);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /strict decoding error: unknown field "spec.replica"/);
    const warn = await kubectl(["apply", "-f", "-", "--dry-run=server", "--validate=warn"], typo);
    assert.equal(warn.code, 0, warn.stderr);
    assert.match(warn.stderr, /Warning: unknown field "spec.replica"/);
  });

  it("applies server-side: creates, then merges the new configuration", async () => {
    const cm = (v: string) =>
      `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa, namespace: default}\ndata: {k: "${v}"}\n`;
    assert.match(
      ok(await kubectl(["apply", "--server-side", "-f", "-"], cm("1"))),
      /configmap\/ssa serverside-applied/,
    );
    ok(await kubectl(["apply", "--server-side", "-f", "-"], cm("2")));
    assert.equal(ok(await kubectl(["get", "configmap", "ssa", "-o", "jsonpath={.data.k}"])), "2");
  });

  it("serves the MeshConfig CRD from deploy/crds: merge patch by short name, and jsonpath read back", async () => {
    ok(await kubectl(["create", "namespace", "osm-system"]));
    assert.match(
      ok(await kubectl(["apply", "-f", "-"], MESH_CONFIG_YAML)),
      /meshconfig.config.openservicemesh.io\/osm-mesh-config created/,
    );
    const p1 = ok(
      await kubectl([
        "patch",
        "meshconfig",
        "osm-mesh-config",
        "-n",
        "osm-system",
        "-p",
        '{"spec":{"traffic":{"enableEgress":false}}}',
        "--type=merge",
      ]),
    );
    assert.equal(p1.trim(), "meshconfig.config.openservicemesh.io/osm-mesh-config patched");
    ok(
      await kubectl([
        "patch",
        "meshconfig",
        "osm-mesh-config",
        "-n",
        "osm-system",
        "-p",
        '{"spec":{"traffic":{"outboundIPRangeExclusionList":["1.1.1.1/32","2.2.2.2/24"]}}}',
        "--type=merge",
      ]),
    );
    const list = ok(
      await kubectl([
        "get",
        "meshconfig",
        "osm-mesh-config",
        "-n",
        "osm-system",
        "-o",
        'jsonpath={.spec.traffic.outboundIPRangeExclusionList}{"\\n"}',
      ]),
    );
    assert.equal(list, '["1.1.1.1/32","2.2.2.2/24"]\n');
    assert.equal(
      ok(
        await kubectl([
          "get",
          "meshconfig",
          "osm-mesh-config",
          "-n",
          "osm-system",
          "-o",
          "jsonpath={.spec.traffic.enableEgress}",
        ]),
      ),
      "false",
    );
    assert.match(ok(await kubectl(["get", "meshconfig", "-n", "osm-system"])), /^osm-mesh-config\s+\d+s$/m);
    const missing = await kubectl([
      "patch",
      "meshconfig",
      "nope",
      "-n",
      "osm-system",
      "--type=merge",
      "-p",
      "{}",
    ]);
    assert.match(
      missing.stderr,
      /Error from server \(NotFound\): meshconfigs.config.openservicemesh.io "nope" not found/,
    );
  });
});
