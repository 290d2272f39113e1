/** The embedded API server in this test's process, with a kubeconfig for it that kubectl, bin/osm and client-node use. */
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import pino from "pino";
import {
  type ApiServer,
  type ApiServerOptions,
  startApiServer,
  writeKubeconfig,
} from "../../src/local/apiserver/index.ts";
import { kubectlEnv } from "./run.ts";

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
