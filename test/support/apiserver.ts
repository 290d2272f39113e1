/** The embedded API server in this test's process, with a kubeconfig for it that kubectl, bin/osm and client-node use. */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { KubeConfig } from "@kubernetes/client-node";
import pino from "pino";
import { writeKubeconfig } from "../../src/local/apiserver/kubeconfig.ts";
import {
  type ApiServer,
  type ApiServerOptions,
  startApiServer,
} from "../../src/local/embedded-api-server.ts";
import { startRealControlPlane } from "./kubernetes.ts";
import { testEngine } from "./mesh.ts";
import { kubectlEnv, run } from "./run.ts";

export interface EmbeddedApiServer {
  readonly server: ApiServer;
  /** `<dir>/kubeconfig`, its current context the server's. */
  readonly kubeconfig: string;
  readonly kc: KubeConfig;
  /** For kubectl and bin/osm: this kubeconfig, with HOME and kubectl's cache in `dir`. */
  readonly env: NodeJS.ProcessEnv;
}

/**
 * Starts the server with its state in `<dir>/state` (a silent logger unless one is given) and writes the
 * kubeconfig. The caller owns `dir` and closes `server`.
 */
export async function startEmbeddedApiServer(
  dir: string,
  context: string,
  options: Omit<ApiServerOptions, "stateDir" | "logger"> & {
    readonly logger?: ApiServerOptions["logger"];
  } = {},
): Promise<EmbeddedApiServer> {
  const server = await startApiServer({
    logger: pino({ level: "silent" }),
    ...options,
    stateDir: join(dir, "state"),
  });
  const kubeconfig = join(dir, "kubeconfig");
  writeKubeconfig({
    path: kubeconfig,
    context,
    server: server.url,
    caPem: server.caPem,
    token: server.token,
    setCurrent: true,
  });
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  return { server, kubeconfig, kc, env: kubectlEnv(kubeconfig, dir) };
}

/** An API server for a suite that needs no node: the embedded one, or the real one on the real-engine run. */
export interface TestApiServer {
  readonly engine: "embedded" | "kubernetes";
  readonly kubeconfig: string;
  readonly kc: KubeConfig;
  readonly env: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

/**
 * The embedded API server, or (OSM_TEST_ENGINE=kubernetes) the real control plane with the MeshConfig CRD
 * established, as the embedded server serves it from the start.
 */
export async function startTestApiServer(dir: string, context: string): Promise<TestApiServer> {
  if (testEngine() === "embedded") {
    const e = await startEmbeddedApiServer(dir, context);
    return {
      engine: "embedded",
      kubeconfig: e.kubeconfig,
      kc: e.kc,
      env: e.env,
      close: () => e.server.close(),
    };
  }
  const real = await startRealControlPlane(dir, context);
  const crd = fileURLToPath(new URL("../../deploy/crds/meshconfig.yaml", import.meta.url));
  for (const args of [
    ["apply", "-f", crd],
    ["wait", "--for=condition=Established", "crd/meshconfigs.config.openservicemesh.io", "--timeout=60s"],
  ]) {
    const r = await run("kubectl", args, { env: real.env });
    if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr}`);
  }
  return {
    engine: "kubernetes",
    kubeconfig: real.kubeconfig,
    kc: real.kc,
    env: real.env,
    close: () => real.plane.stop(),
  };
}
