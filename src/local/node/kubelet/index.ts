/**
 * The node agent's kubelet face toward a real kube-apiserver: the kubelet API server (exec, attach, logs) and
 * the node's registration (Node, status, Lease), started together for the daemon.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { NodeConnector } from "../../node-connector.ts";
import { startNodeRegistration } from "./registration.ts";
import { startKubeletServer } from "./server.ts";

export { type NodeRegistration, startNodeRegistration } from "./registration.ts";
export { type KubeletServer, startKubeletServer } from "./server.ts";

export interface KubeletOptions {
  /** The node's own identity (`system:node:<name>`, group `system:nodes`). */
  readonly kubeConfig: KubeConfig;
  readonly nodeName: string;
  /** The node's InternalIP: the kubelet API listens there. */
  readonly address: string;
  readonly port: number;
  /** Serving certificate (SAN = `address`, signed by the cluster CA) and the cluster CA for client certificates. */
  readonly tls: { readonly certPem: string; readonly keyPem: string; readonly clientCaPem: string };
  readonly connector: NodeConnector;
  readonly logger: Logger;
}

export interface Kubelet {
  readonly port: number;
  stop(): Promise<void>;
}

/** Serves the kubelet API, then registers the node (so the API server never calls a port nobody serves). */
export async function startKubelet(options: KubeletOptions): Promise<Kubelet> {
  const server = await startKubeletServer({
    host: options.address,
    port: options.port,
    tls: options.tls,
    connector: options.connector,
    logger: options.logger,
  });
  try {
    const registration = await startNodeRegistration({
      kubeConfig: options.kubeConfig,
      nodeName: options.nodeName,
      address: options.address,
      kubeletPort: server.port,
      logger: options.logger,
    });
    return {
      port: server.port,
      async stop() {
        await registration.stop();
        await server.close();
      },
    };
  } catch (error) {
    await server.close();
    throw error;
  }
}
