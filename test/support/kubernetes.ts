/**
 * The real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) for
 * suites that need an API server but no node: on 127.0.0.1 and free ports, its state under the caller's
 * `dir`, with an admin kubeconfig for kubectl, bin/osm and client-node.
 */
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import pino from "pino";
import { writeKubeconfig } from "../../src/local/apiserver/kubeconfig.ts";
import { findKubeBinaries } from "../../src/local/kubernetes/binaries.ts";
import { type RunningControlPlane, startControlPlane } from "../../src/local/kubernetes/control-plane.ts";
import { freePort, portFree } from "./poll.ts";
import { kubectlEnv } from "./run.ts";

export interface RealControlPlane {
  readonly plane: RunningControlPlane;
  readonly kubeconfig: string;
  readonly kc: KubeConfig;
  readonly env: NodeJS.ProcessEnv;
}

export async function startRealControlPlane(dir: string, context: string): Promise<RealControlPlane> {
  let etcdPort = await freePort();
  while (!(await portFree(etcdPort + 1))) etcdPort = await freePort();
  const plane = await startControlPlane({
    root: join(dir, "kubernetes"),
    settings: {
      binDir: findKubeBinaries(),
      address: "127.0.0.1",
      apiPort: await freePort(),
      etcdPort,
      kubeletPort: await freePort(),
      serviceCidr: "192.0.2.128/25",
      nodeName: "osmt-node",
    },
    logger: pino({ level: "silent" }),
  });
  const kubeconfig = join(dir, "kubeconfig");
  writeKubeconfig({
    path: kubeconfig,
    context,
    server: plane.apiUrl,
    caPem: plane.pki.caPem,
    clientCertificate: plane.pki.admin,
    setCurrent: true,
  });
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  return { plane, kubeconfig, kc, env: kubectlEnv(kubeconfig, dir) };
}
