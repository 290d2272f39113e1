/**
 * Each pod's own service-account token, on the engine the suite runs on (`OSM_TEST_ENGINE`; bridge `osmt-nw0`,
 * 203.0.113.96/28): the node agent gets it through TokenRequest, bound to the pod, and the API server takes
 * it as that pod's service account, no more (403 where RBAC grants nothing).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  SIDECAR_TOKEN_FILE,
  sidecarTokenMount,
  sidecarTokenVolume,
} from "../../../src/config/sidecar-token.ts";
import { hostLeftovers, localMesh, meshDownPurgeArgs } from "../../support/mesh.ts";
import { until } from "../../support/poll.ts";
import { run } from "../../support/run.ts";

const OSM = fileURLToPath(new URL("../../../bin/osm", import.meta.url));
const PREFIX = "osmt-nw-";
const BRIDGE = "osmt-nw0";
const SA = "/var/run/secrets/kubernetes.io/serviceaccount";
const rootSkip =
  process.getuid?.() === 0 ? false : "needs root: the daemon creates network namespaces and a bridge";

describe("per-pod service-account tokens", { skip: rootSkip, concurrency: false }, () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let stateDir: string;
  let kubeconfig: string;
  const kubectl = (...args: string[]) => run("kubectl", args, { env });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "osmt-token-"));
    let upArgs: string[];
    ({ stateDir, kubeconfig, env, upArgs } = await localMesh(dir, {
      bridge: BRIDGE,
      namePrefix: PREFIX,
      subnet4: "203.0.113.96/28",
      subnet6: "2001:db8:1:f::/64",
      lastSlot: 14,
    }));
    const up = await run(OSM, upArgs, { env, timeoutMs: 120_000 });
    assert.equal(up.code, 0, up.stderr);
    const pod = await kubectl(
      "run",
      "tok",
      "--image=curlimages/curl",
      "--restart=Never",
      "--command",
      "--",
      "sleep",
      "365d",
    );
    assert.equal(pod.code, 0, pod.stderr);
    await until(
      "pod tok Running",
      async () =>
        (await kubectl("get", "pod", "tok", "-o", "jsonpath={.status.phase}")).stdout === "Running"
          ? true
          : undefined,
      60_000,
      250,
    );
  });

  after(async () => {
    if (stateDir) await run(OSM, meshDownPurgeArgs(stateDir, kubeconfig), { env, timeoutMs: 120_000 });
    if (dir) rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(await hostLeftovers(PREFIX, BRIDGE), []);
  });

  test("the token is the pod's service account's, bound to the pod, asked for 3607 s", async () => {
    const token = (await kubectl("exec", "tok", "--", "cat", `${SA}/token`)).stdout;
    const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString());
    const uid = (await kubectl("get", "pod", "tok", "-o", "jsonpath={.metadata.uid}")).stdout;
    assert.equal(claims.sub, "system:serviceaccount:default:default");
    assert.deepEqual(claims["kubernetes.io"].pod, { name: "tok", uid });
    // kube-apiserver extends a 3607 s token to a year and marks when to stop using it; the embedded one does not.
    assert.equal((claims["kubernetes.io"].warnafter ?? claims.exp) - claims.iat, 3607);
  });

  test("a projected token volume is written into the pod, bound to it; TokenReview verifies it for its audience only", async () => {
    const manifest = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "ptok" },
      spec: {
        containers: [
          {
            name: "c",
            image: "curlimages/curl",
            command: ["sleep", "365d"],
            volumeMounts: [sidecarTokenMount()],
            securityContext: { runAsUser: 1500 },
          },
        ],
        volumes: [sidecarTokenVolume()],
      },
    };
    const created = await run("kubectl", ["apply", "-f", "-"], { env, input: JSON.stringify(manifest) });
    assert.equal(created.code, 0, created.stderr);
    await until(
      "pod ptok Running",
      async () =>
        (await kubectl("get", "pod", "ptok", "-o", "jsonpath={.status.phase}")).stdout === "Running"
          ? true
          : undefined,
      60_000,
      250,
    );
    const token = (await kubectl("exec", "ptok", "--", "cat", SIDECAR_TOKEN_FILE)).stdout.trim();
    const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString());
    const uid = (await kubectl("get", "pod", "ptok", "-o", "jsonpath={.metadata.uid}")).stdout;
    assert.deepEqual(claims.aud, ["osm-controller"]);
    assert.deepEqual(claims["kubernetes.io"].pod, { name: "ptok", uid });
    assert.ok(claims.exp - claims.iat <= 3600, "the source's expirationSeconds");
    // The PodSpec carries the volume's recipe, not the token.
    assert.ok(!(await kubectl("get", "pod", "ptok", "-o", "yaml")).stdout.includes(token));
    const review = async (audiences?: string[]) => {
      const body = {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenReview",
        spec: { token, audiences },
      };
      const r = await run("kubectl", ["create", "-f", "-", "-o", "json"], {
        env,
        input: JSON.stringify(body),
      });
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout).status;
    };
    const ok = await review(["osm-controller"]);
    assert.equal(ok.authenticated, true);
    assert.equal(ok.user.username, "system:serviceaccount:default:default");
    assert.deepEqual(ok.user.extra["authentication.kubernetes.io/pod-uid"], [uid]);
    assert.deepEqual(ok.audiences, ["osm-controller"]);
    // For the API server's own audience it is no credential.
    assert.notEqual((await review()).authenticated, true);
    assert.equal((await kubectl("delete", "pod", "ptok", "--grace-period=0", "--force")).code, 0);
  });

  test("the API server takes the pod's files as that service account: forbidden to list secrets", async () => {
    const call = await kubectl(
      "exec",
      "tok",
      "--",
      "sh",
      "-c",
      `curl -sS --cacert ${SA}/ca.crt -H "Authorization: Bearer $(cat ${SA}/token)" https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/api/v1/namespaces/default/secrets`,
    );
    const status = JSON.parse(call.stdout);
    assert.equal(status.code, 403, call.stdout);
    assert.match(
      status.message,
      /User "system:serviceaccount:default:default" cannot list resource "secrets"/,
    );
  });
});
