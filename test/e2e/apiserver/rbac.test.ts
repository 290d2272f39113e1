/**
 * Identities and RBAC on the embedded API server, with the real kubectl: the admin's client certificate,
 * service-account tokens from TokenRequest (`kubectl create token`), bound to a pod and dead with it, the
 * install manifests' least-privilege RBAC enforced with kube-apiserver's 403 text, `kubectl auth can-i` (also
 * `--as` impersonation) and `kubectl auth whoami`, and the pods' shared token counting only from a pod's own
 * address.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { writeKubeconfig } from "../../../src/local/apiserver/kubeconfig.ts";
import { type EmbeddedApiServer, startEmbeddedApiServer } from "../../support/apiserver.ts";
import { kubectlEnv, run } from "../../support/run.ts";
import { tempDir } from "./helpers.ts";

const DEPLOY = new URL("../../../deploy/", import.meta.url).pathname;
const CONTROLLER = "system:serviceaccount:osm-system:osm-controller";
/** kubectl's words for a 401 (with and without its discovery cache). */
const UNAUTHORIZED = /Unauthorized|provide credentials/;

describe("identities and RBAC", () => {
  const dir = tempDir("rbac");
  let api: EmbeddedApiServer;
  const kubectl = (args: string[], env = api.env) => run("kubectl", args, { env, timeoutMs: 30_000 });
  const ok = async (args: string[], env = api.env) => {
    const r = await kubectl(args, env);
    assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  /** kubectl as the bearer of `token` (no other credential in its kubeconfig). */
  const asToken = (token: string, name: string) => {
    const path = join(dir.path, `${name}.kubeconfig`);
    writeKubeconfig({
      path,
      context: name,
      server: api.server.url,
      caPem: api.server.caPem,
      token,
      setCurrent: true,
    });
    return kubectlEnv(path, join(dir.path, name));
  };

  before(async () => {
    api = await startEmbeddedApiServer(dir.path, "rbac");
    await ok(["apply", "-f", join(DEPLOY, "namespace.yaml"), "-f", join(DEPLOY, "rbac.yaml")]);
    await ok(["create", "namespace", "curl"]);
  });
  after(async () => {
    await api.server.close();
    dir.remove();
  });

  it("the admin's client certificate is kubernetes-admin in system:masters, and may do anything", async () => {
    const path = join(dir.path, "admin.kubeconfig");
    writeKubeconfig({
      path,
      context: "admin",
      server: api.server.url,
      caPem: api.server.caPem,
      clientCertificate: api.server.adminCertificate,
      setCurrent: true,
    });
    const env = kubectlEnv(path, join(dir.path, "admin"));
    const who = JSON.parse(await ok(["auth", "whoami", "-o", "json"], env));
    assert.equal(who.status.userInfo.username, "kubernetes-admin");
    assert.deepEqual(who.status.userInfo.groups, ["system:masters", "system:authenticated"]);
    assert.equal(await ok(["auth", "can-i", "*", "*"], env), "yes");
    const unknown = await kubectl(["get", "pods"], asToken("not-a-token", "nobody"));
    assert.match(unknown.stderr, UNAUTHORIZED);
  });

  it("kubectl auth can-i --as the controller follows the installed manifests", async () => {
    const canI = async (...args: string[]) =>
      (await kubectl(["auth", "can-i", ...args, `--as=${CONTROLLER}`])).stdout.trim();
    assert.equal(await canI("create", "pods"), "no");
    assert.equal(await canI("create", "pods", "-n", "curl"), "no");
    assert.equal(await canI("list", "pods", "--all-namespaces"), "yes");
    assert.equal(await canI("patch", "pods", "-n", "curl"), "yes");
    assert.equal(await canI("create", "meshconfigs.config.openservicemesh.io", "-n", "osm-system"), "yes");
    assert.equal(await canI("create", "meshconfigs.config.openservicemesh.io", "-n", "curl"), "no");
    assert.equal(await canI("get", "secrets", "-n", "osm-system"), "no");
    const injector = "--as=system:serviceaccount:osm-system:osm-injector";
    assert.equal(
      (
        await kubectl(["auth", "can-i", "update", "mutatingwebhookconfigurations/osm-webhook-osm", injector])
      ).stdout.trim(),
      "yes",
    );
    assert.equal(
      (
        await kubectl(["auth", "can-i", "update", "mutatingwebhookconfigurations/other", injector])
      ).stdout.trim(),
      "no",
    );
  });

  it("a TokenRequest token is the service account, held to its RBAC with kube-apiserver's 403", async () => {
    const token = await ok(["create", "token", "osm-controller", "-n", "osm-system", "--duration=10m"]);
    const [, payload] = token.split(".");
    const claims = JSON.parse(Buffer.from(payload ?? "", "base64url").toString());
    assert.equal(claims.sub, CONTROLLER);
    assert.equal(claims.exp - claims.iat, 600);
    const env = asToken(token, "controller");
    const who = JSON.parse(await ok(["auth", "whoami", "-o", "json"], env));
    assert.deepEqual(who.status.userInfo.groups, [
      "system:serviceaccounts",
      "system:serviceaccounts:osm-system",
      "system:authenticated",
    ]);
    await ok(["get", "pods", "-A"], env);
    const created = await kubectl(["run", "x", "-n", "curl", "--image=curl", "--restart=Never"], env);
    assert.notEqual(created.code, 0);
    assert.match(
      created.stderr,
      /pods is forbidden: User "system:serviceaccount:osm-system:osm-controller" cannot create resource "pods" in API group "" in the namespace "curl"/,
    );
    const secret = await kubectl(["get", "secret", "s", "-n", "osm-system"], env);
    assert.match(
      secret.stderr,
      /secrets "s" is forbidden: User ".*osm-controller" cannot get resource "secrets" in API group "" in the namespace "osm-system"/,
    );
    const nodes = await kubectl(["get", "nodes"], env);
    assert.match(nodes.stderr, /cannot list resource "nodes" in API group "" at the cluster scope/);
    // Deleting the service account ends its tokens.
    await ok(["delete", "serviceaccount", "osm-controller", "-n", "osm-system"]);
    assert.match((await kubectl(["get", "pods", "-A"], env)).stderr, UNAUTHORIZED);
    await ok(["apply", "-f", join(DEPLOY, "rbac.yaml")]);
  });

  it("a token bound to a pod dies with the pod; TokenRequest refuses short lives and unknown pods", async () => {
    await ok(["run", "holder", "-n", "curl", "--image=curl", "--restart=Never"]);
    const boundToken = (pod: string) =>
      kubectl([
        "create",
        "token",
        "default",
        "-n",
        "curl",
        "--bound-object-kind=Pod",
        `--bound-object-name=${pod}`,
      ]);
    const token = (await boundToken("holder")).stdout.trim();
    const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString());
    assert.equal(claims["kubernetes.io"].pod.name, "holder");
    const env = asToken(token, "bound");
    const who = JSON.parse(await ok(["auth", "whoami", "-o", "json"], env));
    assert.equal(who.status.userInfo.username, "system:serviceaccount:curl:default");
    assert.deepEqual(who.status.userInfo.extra["authentication.kubernetes.io/pod-name"], ["holder"]);
    await ok(["delete", "pod", "holder", "-n", "curl", "--grace-period=0", "--force"]);
    assert.match((await kubectl(["auth", "whoami"], env)).stderr, UNAUTHORIZED);
    const short = await kubectl(["create", "token", "default", "-n", "curl", "--duration=1m"]);
    assert.match(short.stderr, /may not specify a duration less than 10 minutes/);
    const gone = await boundToken("none");
    assert.match(gone.stderr, /pods "none" not found/);
  });

  it("the pods' shared token is a pod's service account from that pod's address, and nobody from elsewhere", async () => {
    const token = api.server.podToken;
    const call = () =>
      new Promise<number>((resolve, reject) => {
        const req = request(
          `${api.server.url}/api/v1/namespaces/osm-system/pods`,
          { agent: new Agent({ ca: api.server.caPem }), headers: { authorization: `Bearer ${token}` } },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on("error", reject);
        req.end();
      });
    assert.equal(await call(), 401, "no pod has the client's address");
    // A pod of the controller's service account whose address is the client's (127.0.0.1 here).
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "ctl", namespace: "osm-system" },
      spec: { serviceAccountName: "osm-controller", containers: [{ name: "c", image: "x" }] },
    };
    await run("kubectl", ["apply", "-f", "-"], { env: api.env, input: JSON.stringify(pod) });
    await ok([
      "patch",
      "pod",
      "ctl",
      "-n",
      "osm-system",
      "--subresource=status",
      "--type=merge",
      "-p",
      '{"status":{"phase":"Running","podIP":"127.0.0.1"}}',
    ]);
    assert.equal(await call(), 200, "the controller may list pods");
    const path = join(dir.path, "pod.kubeconfig");
    writeKubeconfig({
      path,
      context: "pod",
      server: api.server.url,
      caPem: api.server.caPem,
      token,
      setCurrent: true,
    });
    const created = await kubectl(
      ["create", "configmap", "c", "-n", "osm-system"],
      kubectlEnv(path, join(dir.path, "pod")),
    );
    assert.match(
      created.stderr,
      /configmaps is forbidden: User "system:serviceaccount:osm-system:osm-controller" cannot create resource "configmaps"/,
    );
    assert.ok(readFileSync(path, "utf8").includes(token));
  });
});
