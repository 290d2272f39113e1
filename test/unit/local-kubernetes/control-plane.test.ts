import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { controlPlaneComponents } from "../../../src/local/kubernetes/components.ts";
import { kubernetesServiceIp } from "../../../src/local/kubernetes/control-plane.ts";
import { controlPlanePaths } from "../../../src/local/kubernetes/layout.ts";
import { ensureControlPlanePki } from "../../../src/local/kubernetes/pki.ts";
import { chooseServiceCidr } from "../../../src/local/kubernetes/service-range.ts";

const settings = {
  binDir: "/opt/kube/bin",
  address: "198.51.100.1",
  apiPort: 6443,
  etcdPort: 2379,
  kubeletPort: 10250,
  serviceCidr: "192.0.2.128/25",
  nodeName: "osm-local",
};
const base = mkdtempSync(join(tmpdir(), "osmt-kcp-"));
after(() => rmSync(base, { recursive: true, force: true }));

function flag(args: readonly string[], name: string): string | undefined {
  return args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

test("kube-apiserver runs with TLS, Node+RBAC, NodeRestriction and the webhook plugins, on the node address", () => {
  const [etcd, api] = controlPlaneComponents(controlPlanePaths("/state/kubernetes"), settings);
  assert.equal(api?.binary, "/opt/kube/bin/kube-apiserver");
  const args = api?.args ?? [];
  assert.equal(flag(args, "authorization-mode"), "Node,RBAC");
  assert.deepEqual(flag(args, "enable-admission-plugins")?.split(","), [
    "NodeRestriction",
    "MutatingAdmissionWebhook",
    "ValidatingAdmissionWebhook",
  ]);
  assert.equal(flag(args, "bind-address"), "198.51.100.1");
  assert.equal(flag(args, "secure-port"), "6443");
  assert.equal(flag(args, "service-cluster-ip-range"), "192.0.2.128/25");
  assert.equal(flag(args, "etcd-servers"), "http://127.0.0.1:2379");
  assert.equal(flag(args, "kubelet-certificate-authority"), "/state/kubernetes/pki/ca.crt");
  // etcd answers on loopback only, its peer URL on the next port.
  assert.equal(flag(etcd?.args ?? [], "listen-client-urls"), "http://127.0.0.1:2379");
  assert.equal(flag(etcd?.args ?? [], "listen-peer-urls"), "http://127.0.0.1:2380");
});

test("the controller manager and scheduler use their own kubeconfigs and serve nothing", () => {
  const [, , kcm, scheduler] = controlPlaneComponents(controlPlanePaths("/s"), settings);
  assert.equal(flag(kcm?.args ?? [], "kubeconfig"), "/s/kubeconfigs/kube-controller-manager.kubeconfig");
  assert.equal(flag(kcm?.args ?? [], "use-service-account-credentials"), "true");
  assert.equal(flag(kcm?.args ?? [], "secure-port"), "0");
  assert.equal(flag(scheduler?.args ?? [], "kubeconfig"), "/s/kubeconfigs/kube-scheduler.kubeconfig");
});

test("the Service range never holds an address the host uses (here the uplink is 192.0.2.0/24)", () => {
  assert.equal(chooseServiceCidr(["192.0.2.2", "192.0.2.1", "127.0.0.1"]), "192.0.2.128/25");
  assert.equal(chooseServiceCidr(["192.0.2.200"]), "192.0.2.0/25");
  assert.equal(chooseServiceCidr(["192.0.2.1", "192.0.2.129", "192.0.2.70", "192.0.2.200"]), undefined);
  assert.equal(kubernetesServiceIp("192.0.2.128/25"), "192.0.2.129");
});

test("the PKI: one CA signs the apiserver, admin, node and kubelet identities; a second run keeps them", async () => {
  const paths = controlPlanePaths(join(base, "k"));
  const pki = await ensureControlPlanePki(paths, settings, "192.0.2.129", new Date());
  const ca = new X509Certificate(pki.caPem);
  const api = new X509Certificate(readFileSync(paths.leaf("apiserver").cert));
  assert.ok(api.verify(ca.publicKey));
  assert.match(api.subjectAltName ?? "", /IP Address:198\.51\.100\.1/);
  assert.match(api.subjectAltName ?? "", /IP Address:192\.0\.2\.129/);
  assert.match(api.subjectAltName ?? "", /DNS:kubernetes\.default\.svc\.cluster\.local/);
  const admin = new X509Certificate(pki.admin.certPem);
  assert.ok(admin.verify(ca.publicKey));
  assert.match(admin.subject, /CN=kubernetes-admin/);
  assert.match(admin.subject, /O=system:masters/);
  const node = new X509Certificate(pki.node.certPem);
  assert.match(node.subject, /CN=system:node:osm-local/);
  assert.match(node.subject, /O=system:nodes/);
  const kubelet = new X509Certificate(pki.kubeletServing.certPem);
  assert.match(kubelet.subjectAltName ?? "", /IP Address:198\.51\.100\.1/);
  assert.equal(statSync(paths.ca.key).mode & 0o777, 0o600);
  assert.match(readFileSync(paths.serviceAccountPublicKey, "utf8"), /BEGIN PUBLIC KEY/);

  const again = await ensureControlPlanePki(paths, settings, "192.0.2.129", new Date());
  assert.equal(again.admin.certPem, pki.admin.certPem);
  // A new node address re-issues what names it, signed by the same CA.
  const moved = await ensureControlPlanePki(
    paths,
    { ...settings, address: "198.51.100.65" },
    "192.0.2.129",
    new Date(),
  );
  assert.equal(moved.caPem, pki.caPem);
  assert.equal(moved.admin.certPem, pki.admin.certPem);
  assert.notEqual(moved.kubeletServing.certPem, pki.kubeletServing.certPem);
  assert.match(new X509Certificate(moved.kubeletServing.certPem).subjectAltName ?? "", /198\.51\.100\.65/);
});
