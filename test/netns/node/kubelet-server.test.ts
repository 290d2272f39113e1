/**
 * The kubelet API server on the node runtime (bridge `osmt-nk1`, 203.0.113.64/28), called as kube-apiserver
 * calls it: HTTPS to the node's address, verified against the CA that signed the serving certificate, with a
 * client certificate: exec over the real WebSocket protocol (v5, channels, exit code, TTY with resize),
 * containerLogs with the kubelet's query names, and refusals for other identities and foreign CAs.
 */
import assert from "node:assert/strict";
import { request } from "node:https";
import { after, before, describe, test } from "node:test";
import pino from "pino";
import WebSocket from "ws";
import {
  type CertificateAuthority,
  createCertificateAuthority,
  createLeafCertificate,
} from "../../../src/edge/certificates.ts";
import { type KubeletServer, startKubeletServer } from "../../../src/local/node/kubelet/server.ts";
import type { NodeNetworkConfig } from "../../../src/local/node/network-config.ts";
import type { NodeRuntime } from "../../../src/local/node/runtime.ts";
import { allRunning, destroyRuntime, leftovers, makePod, newRuntime, rootSkip, waitFor } from "./harness.ts";

const NETWORK: NodeNetworkConfig = {
  bridge: "osmt-nk1",
  namePrefix: "osmt-nj-",
  subnet4: "203.0.113.64/28",
  subnet6: "2001:db8:1:d::/64",
  gatewayOffset: 1,
  firstSlot: 2,
  lastSlot: 14,
};

interface Identity {
  readonly certPem: string;
  readonly keyPem: string;
}

async function clientCert(ca: CertificateAuthority, commonName: string, organizations?: string[]) {
  return createLeafCertificate(ca, {
    commonName,
    ...(organizations ? { organizations } : {}),
    dnsNames: [],
    ipAddresses: [],
    usages: ["client"],
    now: new Date(),
    validityHours: 1,
  });
}

/** One exec over WebSocket: frames by channel, and the final Status. */
function wsExec(
  url: string,
  ca: string,
  who: Identity,
  onOpen?: (ws: WebSocket) => void,
): Promise<{ channels: Map<number, string>; status: { status?: string; details?: unknown } }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ["v5.channel.k8s.io"], { ca, cert: who.certPem, key: who.keyPem });
    const channels = new Map<number, string>();
    ws.on("open", () => onOpen?.(ws));
    ws.on("message", (data: Buffer) => {
      const ch = data[0] ?? -1;
      channels.set(ch, (channels.get(ch) ?? "") + data.subarray(1).toString());
    });
    ws.on("close", () => resolve({ channels, status: JSON.parse(channels.get(3) ?? "{}") }));
    ws.on("error", reject);
  });
}

function get(url: string, ca: string, who: Identity | undefined): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const r = request(url, { ca, ...(who ? { cert: who.certPem, key: who.keyPem } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    r.on("error", reject);
    r.end();
  });
}

describe("the kubelet API server", { skip: rootSkip, concurrency: false }, () => {
  let runtime: NodeRuntime;
  let stateDir: string;
  let server: KubeletServer;
  let ca: CertificateAuthority;
  let apiserver: Identity;
  let base: string;
  const pod = makePod({
    containers: [
      {
        name: "c",
        image: "busybox",
        command: ["sh", "-c", "echo first; echo second; echo third; exec sleep 3600"],
      },
    ],
  });

  before(async () => {
    ({ runtime, stateDir } = newRuntime(NETWORK));
    await runtime.start();
    ca = await createCertificateAuthority({
      commonName: "test-cluster-ca",
      now: new Date(),
      validityHours: 1,
    });
    const serving = await createLeafCertificate(ca, {
      commonName: "osm-local",
      dnsNames: [],
      ipAddresses: [runtime.plan.gateway4],
      usages: ["server"],
      now: new Date(),
      validityHours: 1,
    });
    apiserver = await clientCert(ca, "kube-apiserver-kubelet-client");
    server = await startKubeletServer({
      host: runtime.plan.gateway4,
      port: 0,
      tls: { certPem: serving.certPem, keyPem: serving.keyPem, clientCaPem: ca.certPem },
      connector: runtime,
      logger: pino({ level: "silent" }),
    });
    base = server.url;
    runtime.runPod(pod);
    await waitFor(runtime, pod.metadata?.uid ?? "", allRunning, "the container running");
  });

  after(async () => {
    await server?.close();
    if (runtime) await destroyRuntime(runtime, stateDir);
    assert.deepEqual(await leftovers(NETWORK.namePrefix), []);
  });

  const path = (kind: string) => `/${kind}/t/${pod.metadata?.name}/c`;

  test("exec over WebSocket v5: stdout and stderr on their channels, the exit code in the final Status", async () => {
    const cmd = ["sh", "-c", "echo out; echo err >&2; exit 3"].map((c) => `command=${encodeURIComponent(c)}`);
    const r = await wsExec(
      `${base.replace("https", "wss")}${path("exec")}?${cmd.join("&")}&output=1&error=1`,
      ca.certPem,
      apiserver,
    );
    assert.equal(r.channels.get(1), "out\n");
    assert.equal(r.channels.get(2), "err\n");
    assert.equal(r.status.status, "Failure");
    assert.deepEqual(r.status.details, { causes: [{ reason: "ExitCode", message: "3" }] });
  });

  test("exec with tty=1: a terminal of the size sent on the resize channel, CR LF output", async () => {
    const cmd = ["sh", "-c", "sleep 0.3; stty size; tty"].map((c) => `command=${encodeURIComponent(c)}`);
    const r = await wsExec(
      `${base.replace("https", "wss")}${path("exec")}?${cmd.join("&")}&output=1&tty=1&input=1`,
      ca.certPem,
      apiserver,
      (ws) => ws.send(Buffer.concat([Buffer.from([4]), Buffer.from('{"Width":101,"Height":33}')])),
    );
    assert.match(r.channels.get(1) ?? "", /^33 101\r\n\/dev\/pts\/\d+\r\n$/);
    assert.equal(r.status.status, "Success");
  });

  test("containerLogs with tailLines and limitBytes; a bad value is refused naming it", async () => {
    const all = await get(`${base}${path("containerLogs")}`, ca.certPem, apiserver);
    assert.deepEqual(all, { status: 200, body: "first\nsecond\nthird\n" });
    const tail = await get(
      `${base}${path("containerLogs")}?tailLines=1&timestamps=true`,
      ca.certPem,
      apiserver,
    );
    assert.match(tail.body, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z third\n$/);
    const limited = await get(`${base}${path("containerLogs")}?limitBytes=8`, ca.certPem, apiserver);
    assert.equal(limited.body, "first\nse");
    const bad = await get(`${base}${path("containerLogs")}?tailLines=-1`, ca.certPem, apiserver);
    assert.equal(bad.status, 400);
    assert.match(bad.body, /tailLines: "-1" is not an integer >= 0/);
    const missing = await get(`${base}/containerLogs/t/nosuch/c`, ca.certPem, apiserver);
    assert.equal(missing.status, 404);
  });

  test("only the API server's identity (or system:masters) is let in; other CAs and no certificate are refused", async () => {
    const node = await clientCert(ca, "system:node:other", ["system:nodes"]);
    const forbidden = await get(`${base}${path("containerLogs")}`, ca.certPem, node);
    assert.equal(forbidden.status, 403);
    assert.match(
      forbidden.body,
      /Forbidden \(user=system:node:other, verb=get, resource=nodes, subresource=proxy\)/,
    );
    const admin = await clientCert(ca, "kubernetes-admin", ["system:masters"]);
    assert.equal((await get(`${base}${path("containerLogs")}`, ca.certPem, admin)).status, 200);
    const otherCa = await createCertificateAuthority({
      commonName: "other",
      now: new Date(),
      validityHours: 1,
    });
    const stranger = await clientCert(otherCa, "kube-apiserver-kubelet-client");
    assert.equal((await get(`${base}${path("containerLogs")}`, ca.certPem, stranger)).status, 401);
    assert.equal((await get(`${base}${path("containerLogs")}`, ca.certPem, undefined)).status, 401);
    await assert.rejects(
      wsExec(`${base.replace("https", "wss")}${path("exec")}?command=true&output=1`, ca.certPem, stranger),
      /Unexpected server response: 401/,
    );
    assert.deepEqual(await get(`${base}/healthz`, ca.certPem, undefined), { status: 200, body: "ok" });
  });
});
