/**
 * The node runtime: every pod of this node as a PodWorker, on one bridge, with one IPAM table and one log
 * store under `stateDir`. It knows nothing of the API server: the node agent feeds it pods and reads views
 * back; tests drive it directly. It also implements the NodeConnector (exec, logs, proxy) the API server calls.
 */
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { request } from "node:http";
import type { Socket } from "node:net";
import { dirname, isAbsolute, join, resolve } from "node:path";
import type { Writable } from "node:stream";
import type { V1Endpoints, V1Pod, V1Service } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { type CommandRunner, createProcessRunner, runChecked } from "../../edge/command-runner.ts";
import { ErrorCode, MeshError } from "../../errors.ts";
import { cidrCovers, parseCidr } from "../../net/index.ts";
import type {
  AttachRequest,
  ExecRequest,
  ExecResult,
  ExecStreams,
  LogRequest,
  NodeConnector,
} from "../node-connector.ts";
import { NodeConnectorError } from "../node-connector.ts";
import {
  buildDnsIndex,
  CLUSTER_DOMAIN,
  type ClusterDns,
  type DnsIndex,
  externalHostRecords,
  startClusterDns,
} from "./cluster-dns.ts";
import type { FileProbe } from "./container-launch.ts";
import { builtinEntrypoints, type EntrypointRegistry } from "./entrypoints.ts";
import { type Ipam, openIpam } from "./ipam.ts";
import { LogStore } from "./log-store.ts";
import { NetnsDialer } from "./netns-dial.ts";
import { createHostNetwork, type HostNetwork, type SandboxRoute } from "./network.ts";
import { buildNetworkPlan, type NetworkPlan, type NodeNetworkConfig } from "./network-config.ts";
import type { Backoff, PodEvent, PodView, ResumeState } from "./pod-context.ts";
import {
  automountsToken,
  type PodApiAccess,
  type PodEnvironment,
  removePodFiles,
  writePodFiles,
} from "./pod-files.ts";
import type { PodMount } from "./pod-namespaces.ts";
import { PodWorker } from "./pod-worker.ts";
import {
  projectedTokenVolumes,
  type TokenFileOwner,
  type TokenSource,
  tokenFileOwner,
} from "./service-account-tokens.ts";
import { planServiceRoutes } from "./service-plan.ts";
import { applyServicesTable, removeServicesTable, renderServicesTable } from "./services-nft.ts";

export interface NodeRuntimeOptions {
  readonly stateDir: string;
  readonly network: NodeNetworkConfig;
  readonly nodeName: string;
  readonly logger: Logger;
  readonly entrypoints?: EntrypointRegistry;
  /** Restart back-off; the kubelet's 10 s → 300 s by default. */
  readonly backoff?: Backoff;
  readonly run?: CommandRunner;
  /**
   * Services on this node, as kube-proxy and the cluster DNS make them: ClusterIP:port DNATed to ready endpoints
   * (`services-nft.ts`, fed by `updateServices`) and a DNS server for Service names on the bridge gateway
   * (`cluster-dns.ts`), which every pod's `/etc/resolv.conf` names. Off: neither (the runtime alone, in tests).
   */
  readonly services?: boolean;
  /** Port of the cluster DNS (default 53). */
  readonly dnsPort?: number;
  /** PATH of every container (the image's PATH, which the host stands in for); default DEFAULT_PATH. */
  readonly containerPath?: string;
  /**
   * Host paths no pod may see besides `stateDir` (the daemon's whole state folder: the API server's PKI):
   * each gets an empty read-only tmpfs over it in every pod's mount namespace.
   */
  readonly hiddenPaths?: readonly string[];
}

/** An external (non-pod) host on the bridge: its own netns, a bridge leg, and addresses pods route to. */
export interface ExternalHost {
  readonly name: string;
  /** Its netns (start servers in it with `ip netns exec <netns> ...`). */
  readonly netns: string;
  /** Its bridge-leg addresses, the next hop of the pods' routes. */
  readonly leg4: string;
  readonly leg6: string;
  /** The addresses it answers on (e.g. 203.0.113.10/32), on its loopback. */
  readonly addresses: readonly string[];
  /** Names pods resolve to its addresses through the cluster DNS (e.g. httpbin.org). */
  readonly hostnames?: readonly string[];
}

/** A DNS name an external host may be given (lower case, at least two labels). */
const HOSTNAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$/;

const DOCUMENTATION_RANGES = ["203.0.113.0/24", "192.0.2.0/24", "2001:db8::/32"].map(parseCidr);

const hostFiles: FileProbe = {
  stat(path) {
    try {
      const st = statSync(path);
      return { mode: st.mode, uid: st.uid, gid: st.gid, isFile: st.isFile(), isDirectory: st.isDirectory() };
    } catch {
      return undefined;
    }
  },
  shebang(path) {
    let fd: number | undefined;
    try {
      fd = openSync(path, "r");
      const head = Buffer.alloc(128);
      const n = readSync(fd, head, 0, head.length, 0);
      const text = head.subarray(0, n).toString("latin1");
      return text.startsWith("#!") ? (text.slice(2).split("\n")[0] ?? "").trim() : undefined;
    } catch {
      return undefined;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  },
};

export class NodeRuntime implements NodeConnector {
  readonly plan: NetworkPlan;
  readonly network: HostNetwork;
  readonly logStore: LogStore;
  readonly #opts: NodeRuntimeOptions;
  readonly #runner: CommandRunner;
  readonly #ipam: Ipam;
  readonly #workers = new Map<string, PodWorker>();
  readonly #terminations = new Map<string, Promise<void>>();
  readonly #externalFile: string;
  readonly #dialer = new NetnsDialer();
  /** Called (synchronously, possibly often) whenever a pod's view changes; the node agent sets it. */
  onChange: ((uid: string) => void) | undefined;
  /** Called with every kubelet-style event of a pod; the node agent posts them as core/v1 Events. */
  onEvent: ((pod: V1Pod, event: PodEvent) => void) | undefined;
  /** Reads ConfigMaps/Secrets for env (`configMapKeyRef`, `secretKeyRef`, `envFrom`); the node agent sets it. */
  readEnvSource:
    | ((
        kind: "ConfigMap" | "Secret",
        namespace: string,
        name: string,
      ) => Promise<Record<string, string> | null>)
    | undefined;

  /**
   * How pods reach the API server. Set (by the daemon) before pods start: then every pod gets the
   * kubelet-managed files (`/etc/hosts`, service account) and env. Unset: pods get none (the runtime alone).
   */
  podApiAccess: PodApiAccess | undefined;
  /**
   * The pod's own API credentials (a bound service-account token, the CA), fetched before its containers
   * start; `tokenFile` is where the token will live (the setter keeps it fresh there). Unset, or resolving
   * null: the shared `podApiAccess`. The node agent sets it.
   */
  podCredentials:
    | ((pod: V1Pod, tokenFile: string) => Promise<{ token: string; caPem: string } | null>)
    | undefined;
  /**
   * Writes one token of a projected volume (`serviceAccountToken` source) into `tokenFile` and keeps it fresh
   * there; rejects when it cannot (the pod then fails to start). The node agent sets it.
   */
  projectToken:
    | ((pod: V1Pod, source: TokenSource, tokenFile: string, owner?: TokenFileOwner) => Promise<void>)
    | undefined;
  /** Cluster DNS names (from `updateServices`) and the server answering them while `services` is on. */
  #dnsIndex: DnsIndex = new Map();
  /** Services' names; `#dnsIndex` is these plus the external hosts' names. */
  #serviceDnsIndex: DnsIndex = new Map();
  #dns: ClusterDns | undefined;
  /** The services table as last applied (or being applied); updates are serialised. */
  #servicesTable: string | undefined;
  #servicesQueue: Promise<void> = Promise.resolve();

  constructor(options: NodeRuntimeOptions) {
    this.#opts = options;
    this.#runner = options.run ?? createProcessRunner();
    this.plan = buildNetworkPlan(options.network);
    this.network = createHostNetwork(this.plan, this.#runner);
    this.#ipam = openIpam(
      join(options.stateDir, "ipam.json"),
      options.network.firstSlot,
      options.network.lastSlot,
    );
    this.logStore = new LogStore(join(options.stateDir, "logs"));
    this.#externalFile = join(options.stateDir, "external-hosts.json");
  }

  /** Creates the bridge (idempotent); with `services`, the (empty) services table and the cluster DNS. */
  async start(): Promise<void> {
    await this.network.ensureBridge();
    if (!this.#opts.services) return;
    await this.updateServices([], []);
    await this.#servicesQueue;
    if (this.#servicesTable === undefined)
      throw new MeshError(ErrorCode.Internal, "could not install the services table (nft)");
    // Only with the table's forward guard in place: DNATed packets leave by the bridge they came from, and
    // nothing from the bridge leaves by another interface.
    await runChecked(this.#runner, [
      "sysctl",
      "-q",
      "-w",
      `net/ipv4/conf/${this.plan.config.bridge}/forwarding=1`,
    ]);
    this.#dns = await startClusterDns(
      this.plan.gateway4,
      this.#opts.dnsPort ?? 53,
      () => this.#dnsIndex,
    ).catch((error: Error) => {
      throw new MeshError(
        ErrorCode.Internal,
        `cluster DNS cannot listen on ${this.plan.gateway4}:${this.#opts.dnsPort ?? 53}: ${error.message}`,
      );
    });
  }

  /**
   * The cluster's Services and Endpoints changed (the node agent calls this with everything it knows): the
   * DNS names at once, the ClusterIP table when it differs from the last one applied. Errors are logged;
   * the next call retries.
   */
  updateServices(services: readonly V1Service[], endpoints: readonly V1Endpoints[]): Promise<void> {
    if (!this.#opts.services) return Promise.resolve();
    this.#serviceDnsIndex = buildDnsIndex(services, endpoints);
    this.#refreshDns();
    const routes = planServiceRoutes(services, endpoints);
    const script = renderServicesTable(this.plan.config.bridge, routes);
    this.#servicesQueue = this.#servicesQueue.then(async () => {
      if (script === this.#servicesTable) return;
      try {
        await applyServicesTable(this.#runner, script);
        this.#servicesTable = script;
        this.#opts.logger.info(
          {
            services: routes.map(
              (r) =>
                `${r.name} ${r.clusterIP}:${r.port} → ${r.backends.map((b) => `${b.ip}:${b.port}`).join(" ") || "none"}`,
            ),
          },
          "services table",
        );
      } catch (error) {
        this.#opts.logger.warn({ err: error }, "services table update failed");
      }
    });
    return this.#servicesQueue;
  }

  /** Starts a pod (no-op when it is known already). `resume` carries counts from an earlier agent run. */
  runPod(pod: V1Pod, resume?: ResumeState): void {
    const uid = pod.metadata?.uid;
    if (!uid) throw new MeshError(ErrorCode.InvalidArgument, "pod has no metadata.uid");
    if (this.#workers.has(uid) || this.#terminations.has(uid)) return;
    const worker = new PodWorker(
      pod,
      {
        network: this.network,
        ipam: this.#ipam,
        logs: this.logStore,
        entrypoints: this.#opts.entrypoints ?? builtinEntrypoints(),
        files: hostFiles,
        backoff: this.#opts.backoff ?? { baseMs: 10_000, maxMs: 300_000 },
        nodeName: this.#opts.nodeName,
        hostIP: this.plan.gateway4,
        logger: this.#opts.logger,
        hiddenPaths: this.#hiddenPaths(),
        routes: () => this.#externalRoutes(),
        ...(this.podApiAccess
          ? { podEnvironment: (p: V1Pod, ips: readonly string[]) => this.#podEnvironment(p, ips) }
          : {}),
        dropPodFiles: (podUid: string) => removePodFiles(join(this.#opts.stateDir, "pods", podUid)),
        onChange: () => this.onChange?.(uid),
        onEvent: (event) => this.onEvent?.(pod, event),
        readEnvSource: (kind, namespace, name) =>
          this.readEnvSource ? this.readEnvSource(kind, namespace, name) : Promise.resolve(null),
      },
      resume,
    );
    this.#workers.set(uid, worker);
    worker.start();
  }

  /** Stops a pod with a grace period and removes everything it had. Resolves when it is gone. */
  killPod(uid: string, graceSeconds?: number): Promise<void> {
    const pending = this.#terminations.get(uid);
    if (pending) return pending;
    const worker = this.#workers.get(uid);
    if (!worker) return Promise.resolve();
    const done = worker.terminate(graceSeconds).finally(() => {
      this.#workers.delete(uid);
      this.#terminations.delete(uid);
      this.onChange?.(uid);
    });
    this.#terminations.set(uid, done);
    return done;
  }

  /** The state folders to hide, outermost only (a tmpfs over a parent hides the children already). */
  #hiddenPaths(): string[] {
    const all = [this.#opts.stateDir, ...(this.#opts.hiddenPaths ?? [])].map((p) => resolve(p));
    return all.filter((p) => !all.some((q) => q !== p && p.startsWith(`${q}/`)) && existsSync(p));
  }

  async #podEnvironment(pod: V1Pod, ips: readonly string[]): Promise<PodEnvironment> {
    const dir = join(this.#opts.stateDir, "pods", pod.metadata?.uid ?? "");
    const own =
      this.podApiAccess && automountsToken(pod)
        ? await this.podCredentials?.(pod, join(dir, "serviceaccount", "token"))
        : undefined;
    const access = own && this.podApiAccess ? { ...this.podApiAccess, ...own } : this.podApiAccess;
    const made = writePodFiles(dir, pod, ips, this.#opts.services ? this.plan.gateway4 : undefined, access);
    const mounts = [...made.mounts, ...(await this.#projectedVolumes(pod, dir))];
    const path = this.#opts.containerPath;
    return { mounts, env: path ? { PATH: path, ...made.env } : made.env };
  }

  /**
   * Projected token volumes, as the kubelet materializes them: each source's token in the pod's folder
   * (`volumes/<name>/<path>`), the folder bind-mounted read-only at every path a container mounts it. The
   * pod's containers share one mount namespace here, so every container of the pod sees it (on a cluster,
   * only those that mount it); other pods never do (the state folder is hidden in them).
   */
  async #projectedVolumes(pod: V1Pod, dir: string): Promise<PodMount[]> {
    const volumes = projectedTokenVolumes(pod);
    if (volumes.length === 0) return [];
    const project = this.projectToken;
    if (!project)
      throw new Error(
        `volume ${JSON.stringify(volumes[0]?.name)}: projected service-account tokens need the node agent's API access`,
      );
    const mounts: PodMount[] = [];
    for (const volume of volumes) {
      const folder = join(dir, "volumes", volume.name);
      mkdirSync(folder, { recursive: true, mode: 0o755 });
      for (const source of volume.sources) {
        const path = source.path;
        if (!path || isAbsolute(path) || path.split("/").includes(".."))
          throw new Error(
            `volume ${JSON.stringify(volume.name)}: serviceAccountToken path ${JSON.stringify(path)} must be a relative path without ".."`,
          );
        const file = join(folder, path);
        mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
        await project(pod, source, file, tokenFileOwner(pod, volume.name));
      }
      for (const target of volume.mountPaths) {
        if (!isAbsolute(target) || target.split("/").includes(".."))
          throw new Error(
            `volume ${JSON.stringify(volume.name)}: mountPath ${JSON.stringify(target)} must be absolute`,
          );
        // The mount point, on the host as for the service account directory: created once, never removed.
        mkdirSync(target, { recursive: true, mode: 0o755 });
        mounts.push({ source: folder, target });
      }
    }
    return mounts;
  }

  view(uid: string): PodView | undefined {
    return this.#workers.get(uid)?.view();
  }

  has(uid: string): boolean {
    return this.#workers.has(uid);
  }

  /**
   * Where a running pod's interception lives, for the live updater: its netns path, IPs and the resolv.conf
   * its containers see (the kubelet-managed one, else the host's). Undefined until the sandbox exists.
   */
  interceptionTarget(
    uid: string,
  ): { netns: string; podIPs: readonly string[]; resolvConf: string } | undefined {
    const view = this.view(uid);
    if (!view?.sandbox) return undefined;
    const own = join(this.#opts.stateDir, "pods", uid, "resolv.conf");
    let resolvConf = "";
    for (const file of [own, "/etc/resolv.conf"]) {
      try {
        resolvConf = readFileSync(file, "utf8");
        break;
      } catch {
        // not written for this pod (dnsPolicy Default, or no services): the next candidate
      }
    }
    return { netns: `/run/netns/${view.sandbox}`, podIPs: view.podIPs, resolvConf };
  }

  uids(): string[] {
    return [...this.#workers.keys()];
  }

  #find(namespace: string, pod: string): PodWorker {
    for (const w of this.#workers.values()) {
      if (w.namespace === namespace && w.name === pod && !w.view().terminating) return w;
    }
    for (const w of this.#workers.values()) if (w.namespace === namespace && w.name === pod) return w;
    throw new NodeConnectorError(
      404,
      `pod ${namespace}/${pod} is not running on node ${this.#opts.nodeName}`,
    );
  }

  async exec(request: ExecRequest, streams: ExecStreams, signal: AbortSignal): Promise<ExecResult> {
    const worker = this.#find(request.namespace, request.pod);
    const exitCode = await worker.exec(request.container, request.command, request.tty, streams, signal);
    return { exitCode };
  }

  async attach(request: AttachRequest, streams: ExecStreams, signal: AbortSignal): Promise<ExecResult> {
    const worker = this.#find(request.namespace, request.pod);
    return { exitCode: await worker.attach(request.container, streams, signal) };
  }

  async logs(req: LogRequest, out: Writable, signal: AbortSignal): Promise<void> {
    const worker = this.#find(req.namespace, req.pod);
    const target = worker.logTarget(req.container, req.previous);
    await this.logStore.read(
      worker.uid,
      target.container,
      target.attempt,
      {
        follow: req.follow && target.live,
        tailLines: req.tailLines,
        timestamps: req.timestamps,
        sinceSeconds: req.sinceSeconds,
        limitBytes: req.limitBytes,
      },
      out,
      signal,
    );
  }

  proxyHttp(
    req: { namespace: string; pod: string; port: number; path: string; method: string },
    signal: AbortSignal,
  ): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
    const worker = this.#find(req.namespace, req.pod);
    const ip = worker.view().podIPs[0];
    if (!ip) return Promise.reject(new NodeConnectorError(400, `pod ${req.pod} has no IP yet`));
    return new Promise((resolve, reject) => {
      const r = request(
        { host: ip, port: req.port, path: req.path || "/", method: req.method, signal, timeout: 30_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const headers: Record<string, string> = {};
            for (const [k, v] of Object.entries(res.headers))
              if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : v;
            resolve({ status: res.statusCode ?? 502, headers, body: Buffer.concat(chunks) });
          });
        },
      );
      r.on("timeout", () => r.destroy(new Error("timeout")));
      r.on("error", (e) =>
        reject(
          new NodeConnectorError(500, `error trying to reach pod ${req.pod} port ${req.port}: ${e.message}`),
        ),
      );
      r.end();
    });
  }

  /** localhost:port inside the pod's network namespace, as a CRI runtime dials for port-forward. */
  async connectPort(req: { namespace: string; pod: string; port: number }): Promise<Socket> {
    const sandbox = this.#find(req.namespace, req.pod).view().sandbox;
    if (!sandbox) throw new NodeConnectorError(400, `pod ${req.pod} has no network namespace yet`);
    try {
      return await this.#dialer.dial(`/run/netns/${sandbox}`, req.port);
    } catch (error) {
      throw new NodeConnectorError(500, (error as Error).message);
    }
  }

  // ---- external hosts -------------------------------------------------------------------------------------

  #readExternal(): ExternalHost[] {
    try {
      return JSON.parse(readFileSync(this.#externalFile, "utf8")) as ExternalHost[];
    } catch {
      return [];
    }
  }

  #externalRoutes(): SandboxRoute[] {
    return this.#readExternal().flatMap((h) =>
      h.addresses.map((a) => ({ dst: a, via: a.includes(":") ? h.leg6 : h.leg4 })),
    );
  }

  /**
   * Attaches an external host to the bridge: a netns with a bridge leg (an IPAM slot) and `addresses` on its
   * loopback (e.g. `203.0.113.10/32`). Every pod, present and future, and the host get a route to each address
   * via the leg — layer 2 on the bridge, no forwarding. Idempotent per name.
   */
  async addExternalHost(
    name: string,
    addresses: readonly string[],
    hostnames: readonly string[] = [],
  ): Promise<ExternalHost> {
    for (const hostname of hostnames) {
      if (!HOSTNAME.test(hostname) || hostname.endsWith(`.${CLUSTER_DOMAIN}`)) {
        throw new MeshError(
          ErrorCode.InvalidArgument,
          `--hostname ${JSON.stringify(hostname)} is not a host name pods may resolve to an external host`,
          { hint: "lower-case DNS labels separated by dots, e.g. httpbin.org; not under cluster.local" },
        );
      }
    }
    if (!/^[a-z0-9-]{1,40}$/.test(name)) {
      throw new MeshError(
        ErrorCode.InvalidArgument,
        `external host name ${JSON.stringify(name)} must be [a-z0-9-]{1,40}`,
      );
    }
    if (addresses.length === 0) {
      throw new MeshError(ErrorCode.InvalidArgument, `external host ${name} needs at least one address`);
    }
    for (const a of addresses) {
      // Documentation ranges only (RFC 5737, RFC 3849): an external host must never shadow a real network.
      const cidr = parseCidr(a.includes("/") ? a : `${a}/${a.includes(":") ? 128 : 32}`);
      if (!DOCUMENTATION_RANGES.some((r) => cidrCovers(r, cidr))) {
        throw new MeshError(
          ErrorCode.InvalidArgument,
          `external host address ${JSON.stringify(a)} is outside the documentation ranges`,
          { hint: "use addresses from 203.0.113.0/24, 192.0.2.0/24 or 2001:db8::/32" },
        );
      }
    }
    const existing = this.#readExternal().find((h) => h.name === name);
    if (existing) return existing;
    for (const a of addresses) await this.#refuseHostNetwork(a);
    const slot = this.#ipam.allocate({ owner: `external:${name}`, label: name });
    const sb = await this.network.createSandbox(slot, [], addresses);
    const host: ExternalHost = {
      name,
      netns: sb.name,
      leg4: sb.ip4,
      leg6: sb.ip6,
      addresses: [...addresses],
      ...(hostnames.length > 0 ? { hostnames: [...hostnames] } : {}),
    };
    writeFileSync(this.#externalFile, JSON.stringify([...this.#readExternal(), host]));
    this.#refreshDns();
    const routes = addresses.map((a) => ({ dst: a, via: a.includes(":") ? host.leg6 : host.leg4 }));
    for (const w of this.#workers.values()) if (w.sandbox) await this.network.addRoutes(w.sandbox, routes);
    for (const r of routes)
      await runChecked(this.#runner, [
        "ip",
        "route",
        "replace",
        r.dst,
        "via",
        r.via,
        "dev",
        this.plan.config.bridge,
      ]);
    return host;
  }

  /**
   * Refuses an external address inside a network directly connected to the host on another interface (a
   * `proto kernel` route): the host route to the external host would take those addresses over. Documentation
   * ranges are not always free: on some of these machines the uplink is 192.0.2.0/24, gateway 192.0.2.1.
   * (Another daemon's route to the same external address is not such a clash: the last one wins, as before.)
   */
  async #refuseHostNetwork(address: string): Promise<void> {
    const v6 = address.includes(":");
    const cidr = address.includes("/") ? address : `${address}/${v6 ? 128 : 32}`;
    const routes = await runChecked(this.#runner, [
      "ip",
      v6 ? "-6" : "-4",
      "-o",
      "route",
      "show",
      "match",
      cidr,
    ]);
    const clash = routes
      .split("\n")
      .map((l) => l.trim())
      .find((l) => / proto kernel /.test(`${l} `) && !l.includes(` dev ${this.plan.config.bridge} `));
    if (clash) {
      throw new MeshError(
        ErrorCode.InvalidArgument,
        `external host address ${JSON.stringify(address)} lies in a network of this host (${clash.split(" proto")[0]})`,
        { hint: "pick an address from a documentation range this host does not use, e.g. 203.0.113.0/24" },
      );
    }
  }

  /** Detaches an external host: routes, its processes, netns, slot. No-op when unknown. */
  async removeExternalHost(name: string): Promise<void> {
    const all = this.#readExternal();
    const host = all.find((h) => h.name === name);
    if (!host) return;
    const routes = host.addresses.map((a) => ({ dst: a, via: a.includes(":") ? host.leg6 : host.leg4 }));
    for (const w of this.#workers.values()) if (w.sandbox) await this.network.removeRoutes(w.sandbox, routes);
    for (const r of routes)
      await this.#runner.run(["ip", "route", "del", r.dst, "via", r.via, "dev", this.plan.config.bridge]);
    await this.network.deleteSandbox(host.netns);
    this.#ipam.release(`external:${name}`);
    writeFileSync(this.#externalFile, JSON.stringify(all.filter((h) => h.name !== name)));
    this.#refreshDns();
  }

  /** The cluster DNS answers for Services and for the external hosts' names. */
  #refreshDns(): void {
    this.#dnsIndex = new Map([...externalHostRecords(this.#readExternal()), ...this.#serviceDnsIndex]);
  }

  externalHosts(): ExternalHost[] {
    return this.#readExternal();
  }

  // ---- reconcile and shutdown ------------------------------------------------------------------------------

  /**
   * Removes what no live pod owns: IPAM slots of pods not in `keep` (and not external hosts), and any netns or
   * link with our prefix that no slot explains, killing the processes inside first. Returns what was removed.
   */
  async removeOrphans(keep: ReadonlySet<string>): Promise<string[]> {
    const removed: string[] = [];
    const owned = new Set<string>();
    for (const [slot, owner] of [...this.#ipam.entries()]) {
      const name = this.plan.sandboxName(slot);
      if (owner.owner.startsWith("external:") || keep.has(owner.owner) || this.#workers.has(owner.owner)) {
        owned.add(name);
        continue;
      }
      await this.network.deleteSandbox(name);
      this.#ipam.release(owner.owner);
      this.logStore.removePod(owner.owner);
      removePodFiles(join(this.#opts.stateDir, "pods", owner.owner));
      removed.push(name);
    }
    const ours = await this.network.listOurs();
    for (const name of new Set([...ours.netns, ...ours.links])) {
      if (owned.has(name)) continue;
      await this.network.deleteSandbox(name);
      removed.push(name);
    }
    return [...new Set(removed)];
  }

  /** Stops every pod (grace `graceSeconds`), removes external hosts and, with `removeBridge`, the bridge. */
  async shutdown(options: { graceSeconds: number; removeBridge: boolean }): Promise<void> {
    this.#dialer.close();
    await Promise.all(this.uids().map((uid) => this.killPod(uid, options.graceSeconds)));
    await this.#dns?.close();
    this.#dns = undefined;
    await this.#servicesQueue;
    if (options.removeBridge) {
      await removeServicesTable(this.#runner, this.plan.config.bridge);
      for (const h of this.#readExternal()) await this.removeExternalHost(h.name);
      await this.removeOrphans(new Set());
      await this.network.removeBridge();
    }
  }
}
