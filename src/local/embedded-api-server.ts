/**
 * The composition root of the embedded Kubernetes-compatible API server (apiserver/ serves, controllers/ act
 * through its Api; this module wires the two): `startApiServer` opens the store in `stateDir`, loads or
 * creates the CA, serving certificate and credentials (kept in `stateDir/pki`), creates the bootstrap RBAC
 * roles and bindings, loads `deploy/crds/*.yaml`,
 * starts the controllers and listens with HTTPS on `host:port` (default 127.0.0.1, port 0 = random).
 */

import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import { formatHost } from "../net/host-port.ts";
import { WebhookAdmission } from "./apiserver/admission.ts";
import { Api, internalContext } from "./apiserver/api.ts";
import { Authenticator } from "./apiserver/authn.ts";
import { Authorizer } from "./apiserver/authz.ts";
import { bootstrapClusterRoleBindings, bootstrapClusterRoles } from "./apiserver/bootstrap-rbac.ts";
import { loadCrdFiles, watchCrds } from "./apiserver/crds.ts";
import { NODE_NAME, nowIso } from "./apiserver/defaults.ts";
import { hostIPv4Addresses } from "./apiserver/host-addresses.ts";
import { ResourceRegistry } from "./apiserver/resources.ts";
import { createApiHttpsServer } from "./apiserver/server.ts";
import { loadOrCreateIdentity } from "./apiserver/tls.ts";
import { TokenSigner } from "./apiserver/tokens.ts";
import { WatchHub } from "./apiserver/watch.ts";
import { startControllers } from "./controllers/index.ts";
import type { NodeConnector } from "./node-connector.ts";
import { Store } from "./store/store.ts";

export interface ApiServerOptions {
  readonly stateDir: string;
  readonly host?: string;
  /**
   * More addresses to listen on, with the same port (and in the certificate): the daemon adds the pod bridge's
   * gateway addresses so pods reach the API as in-cluster clients do.
   */
  readonly extraHosts?: readonly string[];
  /** 0 (default) picks a free port. */
  readonly port?: number;
  readonly nodeConnector?: NodeConnector;
  readonly logger: Logger;
  /** Directories of CRD manifests to load at startup; default: the repository's `deploy/crds`. */
  readonly crdDirs?: readonly string[];
  /** How many store events a watch can reach back over (older → 410 Gone). */
  readonly watchHistory?: number;
  /** Compact the store's write-ahead log into a snapshot after this many records (default 5000). */
  readonly compactEvery?: number;
}

export interface ApiServer {
  /** `https://host:port` */
  readonly url: string;
  readonly caPem: string;
  /** The admin's bearer token (`kubernetes-admin`, group `system:masters`). */
  readonly token: string;
  /** The admin's client certificate (same identity): what the daemon's kubeconfig context carries. */
  readonly adminCertificate: { readonly certPem: string; readonly keyPem: string };
  /** The node agent's bearer token (`system:node:osm-local`, group `system:nodes`, ClusterRole `system:node`). */
  readonly nodeToken: string;
  /**
   * The token the node agent gives every pod until it requests each pod's own through TokenRequest: valid only
   * from a running pod's address, as that pod's service account (`authn.ts`).
   */
  readonly podToken: string;
  readonly port: number;
  close(): Promise<void>;
}

const DEFAULT_CRD_DIR = fileURLToPath(new URL("../../deploy/crds/", import.meta.url));
const SYSTEM_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"];

/**
 * The one Node, `osm-local`, so `kubectl get nodes` answers as on a cluster. Its status says Ready: the node
 * agent runs in the same daemon as this server (a dead agent means a dead server).
 */
async function registerNode(api: Api, host: string): Promise<void> {
  const nodeType = api.registry.find("", "v1", "nodes");
  if (!nodeType || api.find(nodeType, "", NODE_NAME)) return;
  const now = nowIso();
  await api.create(
    nodeType,
    "",
    {
      metadata: {
        name: NODE_NAME,
        labels: {
          "kubernetes.io/hostname": NODE_NAME,
          "kubernetes.io/os": "linux",
          "node-role.kubernetes.io/control-plane": "",
        },
      },
    },
    internalContext(),
  );
  await api.mutate(
    nodeType,
    "",
    NODE_NAME,
    (c) => ({
      ...c,
      status: {
        conditions: [
          {
            type: "Ready",
            status: "True",
            reason: "KubeletReady",
            message: "osm-ts local node agent",
            lastHeartbeatTime: now,
            lastTransitionTime: now,
          },
        ],
        addresses: [
          { type: "InternalIP", address: host },
          { type: "Hostname", address: NODE_NAME },
        ],
        nodeInfo: {
          kubeletVersion: "v1.32.4-osmt",
          osImage: "osm-ts local runtime",
          operatingSystem: "linux",
          architecture: process.arch === "x64" ? "amd64" : process.arch,
          containerRuntimeVersion: "osm-ts://netns",
          kernelVersion: "",
          kubeProxyVersion: "",
          machineID: "",
          systemUUID: "",
          bootID: "",
        },
      },
    }),
    internalContext(),
    "status",
  );
}

export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const logger = options.logger;
  const host = options.host ?? "127.0.0.1";
  const extraHosts = options.extraHosts ?? [];
  const identity = await loadOrCreateIdentity(options.stateDir, [host, ...extraHosts]);
  const store = Store.open({
    dir: options.stateDir,
    logger: logger.child({ component: "store" }),
    compactEvery: options.compactEvery,
  });
  const registry = new ResourceRegistry();
  const stopCrds = watchCrds(store, registry, logger);
  const api = new Api(store, registry, logger, hostIPv4Addresses);
  api.admission = new WebhookAdmission(api, logger.child({ component: "admission" }));
  const hub = new WatchHub(store, options.watchHistory);
  const nsType = registry.find("", "v1", "namespaces");
  for (const name of SYSTEM_NAMESPACES) {
    if (nsType && !api.find(nsType, "", name))
      await api.create(nsType, "", { metadata: { name } }, internalContext());
  }
  await registerNode(api, host);
  for (const dir of options.crdDirs ?? [DEFAULT_CRD_DIR]) await loadCrdFiles(api, dir, logger);
  const stopControllers = startControllers(api, logger.child({ component: "controllers" }));
  for (const [resource, objects] of [
    ["clusterroles", bootstrapClusterRoles()],
    ["clusterrolebindings", bootstrapClusterRoleBindings()],
  ] as const) {
    const rbacType = registry.find("rbac.authorization.k8s.io", "v1", resource);
    for (const o of objects)
      if (rbacType && !api.find(rbacType, "", o.metadata.name))
        await api.create(rbacType, "", o, internalContext());
  }
  const signer = new TokenSigner(identity.serviceAccountKeyPem);
  const deps = {
    api,
    hub,
    signer,
    authenticator: new Authenticator(
      api,
      {
        adminToken: identity.token,
        nodeToken: identity.nodeToken,
        podToken: identity.podToken,
        nodeName: NODE_NAME,
      },
      signer,
    ),
    authorizer: new Authorizer(api),
    nodeConnector: options.nodeConnector,
    logger,
    now: () => Date.now(),
    serverAddress: "",
  };
  const sockets = new Set<Duplex>();
  const newServer = () => {
    const s = createApiHttpsServer(deps, {
      key: identity.keyPem,
      cert: identity.certPem,
      ca: identity.caPem,
    });
    for (const event of ["connection", "secureConnection"]) {
      s.on(event, (c: Duplex) => {
        sockets.add(c);
        c.on("close", () => sockets.delete(c));
      });
    }
    return s;
  };
  const listenOn = (s: ReturnType<typeof newServer>, port: number, address: string) =>
    new Promise<void>((resolve, reject) => {
      s.once("error", reject);
      s.listen(port, address, () => {
        s.off("error", reject);
        resolve();
      });
    });
  const server = newServer();
  const servers = [server];
  try {
    await listenOn(server, options.port ?? 0, host);
    const chosen = (server.address() as AddressInfo).port;
    for (const address of extraHosts) {
      const extra = newServer();
      servers.push(extra);
      await listenOn(extra, chosen, address);
    }
  } catch (error) {
    for (const s of servers) s.close();
    stopControllers();
    stopCrds();
    hub.close();
    store.close();
    throw error;
  }
  const port = (server.address() as AddressInfo).port;
  const hostPart = formatHost(host);
  deps.serverAddress = `${hostPart}:${port}`;
  const url = `https://${hostPart}:${port}`;
  logger.info({ url, stateDir: options.stateDir }, "API server listening");
  let closed = false;
  return {
    url,
    caPem: identity.caPem,
    token: identity.token,
    adminCertificate: identity.admin,
    nodeToken: identity.nodeToken,
    podToken: identity.podToken,
    port,
    async close() {
      if (closed) return;
      closed = true;
      stopControllers();
      hub.close();
      await Promise.all(
        servers.map(
          (srv) =>
            new Promise<void>((resolve) => {
              srv.close(() => resolve());
              for (const s of sockets) s.destroy();
            }),
        ),
      );
      stopCrds();
      store.close();
    },
  };
}
