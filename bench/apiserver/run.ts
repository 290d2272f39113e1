/**
 * API server numbers (not pass/fail): durable create rate (every write fdatasync'd), get/list latency,
 * watch delivery latency, restart (replay) time, and Deployment → pods time. In process, loopback only,
 * bounded: `node bench/apiserver/run.ts [objects=2000]`. Client and server share one thread here; a CPU
 * profile shows the client's TLS handshakes (client-node opens a connection per request) dominate, the
 * store's fdatasync about 7%.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import pino from "pino";
import { writeKubeconfig } from "../../src/local/apiserver/kubeconfig.ts";
import { startApiServer } from "../../src/local/embedded-api-server.ts";

const count = Math.min(20_000, Number(process.argv[2] ?? 2000));
const dir = mkdtempSync(join(tmpdir(), "osmt-api-bench-"));
const logger = pino({ level: "silent" });

async function clientFor(server: { url: string; caPem: string; token: string }) {
  writeKubeconfig({
    path: join(dir, "kubeconfig"),
    context: "osm-local",
    server: server.url,
    caPem: server.caPem,
    token: server.token,
    setCurrent: true,
  });
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(join(dir, "kubeconfig"));
  return kc;
}

function ms(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

try {
  let server = await startApiServer({ stateDir: join(dir, "state"), logger, crdDirs: [] });
  let kc = await clientFor(server);
  let core = kc.makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: "bench" } } });

  // Watch latency: time from create acknowledged to the ADDED event.
  const sent = new Map<string, bigint>();
  const latencies: number[] = [];
  const watch = new k8s.Watch(kc);
  const req = await watch.watch(
    "/api/v1/namespaces/bench/configmaps",
    {},
    (type, obj: k8s.V1ConfigMap) => {
      const t = sent.get(obj.metadata?.name ?? "");
      if (type === "ADDED" && t) latencies.push(ms(t));
    },
    () => undefined,
  );

  const t0 = process.hrtime.bigint();
  const concurrency = 16;
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const name = `cm-${next++}`;
        sent.set(name, process.hrtime.bigint());
        await core.createNamespacedConfigMap({
          namespace: "bench",
          body: { metadata: { name }, data: { k: "v".repeat(100) } },
        });
      }
    }),
  );
  const createMs = ms(t0);
  await new Promise((r) => setTimeout(r, 200));
  req.abort();
  latencies.sort((a, b) => a - b);

  const t1 = process.hrtime.bigint();
  for (let i = 0; i < 200; i++) await core.readNamespacedConfigMap({ name: `cm-${i}`, namespace: "bench" });
  const getMs = ms(t1) / 200;
  const t2 = process.hrtime.bigint();
  const list = await core.listNamespacedConfigMap({ namespace: "bench" });
  const listMs = ms(t2);

  await server.close();
  const t3 = process.hrtime.bigint();
  server = await startApiServer({ stateDir: join(dir, "state"), logger, crdDirs: [] });
  const restartMs = ms(t3);
  kc = await clientFor(server);
  core = kc.makeApiClient(k8s.CoreV1Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const t4 = process.hrtime.bigint();
  await apps.createNamespacedDeployment({
    namespace: "bench",
    body: {
      metadata: { name: "d" },
      spec: {
        replicas: 20,
        selector: { matchLabels: { a: "d" } },
        template: { metadata: { labels: { a: "d" } }, spec: { containers: [{ name: "c", image: "x" }] } },
      },
    },
  });
  for (let i = 0; i < 500; i++) {
    const pods = await core.listNamespacedPod({ namespace: "bench", labelSelector: "a=d" });
    if (pods.items.length === 20) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const deployMs = ms(t4);
  await server.close();

  const pct = (p: number) => (latencies[Math.floor((latencies.length - 1) * p)] ?? Number.NaN).toFixed(1);
  console.log(
    `creates: ${count} in ${createMs.toFixed(0)} ms = ${((count / createMs) * 1000).toFixed(0)}/s (concurrency ${concurrency}, fdatasync each)`,
  );
  console.log(
    `watch ADDED latency after create ack: p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms (${latencies.length} events)`,
  );
  console.log(`get: ${getMs.toFixed(2)} ms each; list of ${list.items.length}: ${listMs.toFixed(0)} ms`);
  console.log(`restart (snapshot + WAL replay of ${count} objects): ${restartMs.toFixed(0)} ms`);
  console.log(`Deployment of 20 replicas → 20 pods listed: ${deployMs.toFixed(0)} ms`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
