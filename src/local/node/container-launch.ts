/**
 * From a PodSpec container to the exact process to start: argv (entrypoint registry, `$(VAR)` expansion), env
 * (incl. `fieldRef`), uid/gid/groups, capabilities, working dir. Pure apart from the injected file lookups, so
 * every rule here is unit-tested without root.
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { effectiveCapabilities } from "../../injector/capabilities.ts";
import { type EntrypointRegistry, normalizeImage } from "./entrypoints.ts";
import { hostNamespacesOf, joinArgv } from "./pod-namespaces.ts";

/** What a container process is started with. */
export interface ContainerLaunch {
  /** The full argv, beginning with the nsenter/setpriv wrapper. */
  readonly argv: readonly string[];
  /** The container's own argv (after entrypoint and expansion). */
  readonly command: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly uid: number;
  readonly gid: number;
}

/** Why a container cannot be started; `reason` follows the kubelet's (CreateContainerConfigError, StartError). */
export interface LaunchFailure {
  readonly reason: "CreateContainerConfigError" | "StartError";
  readonly message: string;
}

/** The facts about the pod that env `fieldRef`s may read. */
export interface PodFacts {
  readonly podIP: string;
  readonly podIPs: readonly string[];
  readonly hostIP: string;
  readonly nodeName: string;
  readonly netnsPath: string;
  /** The pod's namespace holder (`pod-namespaces.ts`): containers join its PID, mount, UTS and IPC namespaces. */
  readonly holderPid: number;
  /** Env the kubelet adds before the container's own (KUBERNETES_SERVICE_HOST/PORT). */
  readonly serviceEnv?: Readonly<Record<string, string>>;
}

/** File lookups, injected: `stat` of a path (mode, uid, gid, isFile/isDirectory) or undefined when missing. */
export interface FileProbe {
  stat(
    path: string,
  ): { mode: number; uid: number; gid: number; isFile: boolean; isDirectory: boolean } | undefined;
  /** The interpreter line of a script (`#!...` without the `#!`), or undefined for a binary or unreadable file. */
  shebang?(path: string): string | undefined;
}

export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Expands `$(VAR)` from `vars` as the kubelet does: `$$(X)` is a literal `$(X)`, unknown refs stay as written. */
export function expandVars(text: string, vars: Readonly<Record<string, string>>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) => {
    if (m === "$$") return "$";
    return name !== undefined && Object.hasOwn(vars, name) ? (vars[name] as string) : m;
  });
}

function fieldRefValue(pod: V1Pod, facts: PodFacts, fieldPath: string): string | undefined {
  const meta = pod.metadata ?? {};
  const keyed = /^metadata\.(labels|annotations)\['([^']+)'\]$/.exec(fieldPath);
  if (keyed?.[2]) return (keyed[1] === "labels" ? meta.labels : meta.annotations)?.[keyed[2]] ?? "";
  switch (fieldPath) {
    case "status.podIP":
      return facts.podIP;
    case "status.podIPs":
      return facts.podIPs.join(",");
    case "status.hostIP":
    case "status.hostIPs":
      return facts.hostIP;
    case "spec.nodeName":
      return facts.nodeName;
    case "spec.serviceAccountName":
      return pod.spec?.serviceAccountName ?? "default";
    case "metadata.name":
      return meta.name ?? "";
    case "metadata.namespace":
      return meta.namespace ?? "";
    case "metadata.uid":
      return meta.uid ?? "";
    default:
      return undefined;
  }
}

/** The ConfigMaps and Secrets a container's env reads, fetched before launch: name → data (Secret values
 * decoded), or null when the object does not exist. */
export interface EnvSources {
  readonly configMaps: ReadonlyMap<string, Readonly<Record<string, string>> | null>;
  readonly secrets: ReadonlyMap<string, Readonly<Record<string, string>> | null>;
}

export const NO_ENV_SOURCES: EnvSources = { configMaps: new Map(), secrets: new Map() };

/** Names of the ConfigMaps and Secrets `env`/`envFrom` refer to. */
export function envSourceNames(container: V1Container): { configMaps: string[]; secrets: string[] } {
  const configMaps = new Set<string>();
  const secrets = new Set<string>();
  for (const f of container.envFrom ?? []) {
    if (f.configMapRef?.name) configMaps.add(f.configMapRef.name);
    if (f.secretRef?.name) secrets.add(f.secretRef.name);
  }
  for (const e of container.env ?? []) {
    if (e.valueFrom?.configMapKeyRef?.name) configMaps.add(e.valueFrom.configMapKeyRef.name);
    if (e.valueFrom?.secretKeyRef?.name) secrets.add(e.valueFrom.secretKeyRef.name);
  }
  return { configMaps: [...configMaps], secrets: [...secrets] };
}

const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

/**
 * The container's environment: defaults, then `envFrom` (ConfigMaps, Secrets, with prefix), then `env` in
 * order (each may reference earlier ones via `$(VAR)`), with the kubelet's error texts for missing sources.
 */
export function buildEnv(
  pod: V1Pod,
  container: V1Container,
  facts: PodFacts,
  uid: number,
  sources: EnvSources = NO_ENV_SOURCES,
): { env: Record<string, string> } | LaunchFailure {
  const env: Record<string, string> = {
    PATH: DEFAULT_PATH,
    HOSTNAME: pod.metadata?.name ?? "",
    HOME: uid === 0 ? "/root" : "/",
    ...facts.serviceEnv,
  };
  const ns = pod.metadata?.namespace ?? "default";
  const configError = (message: string): LaunchFailure => ({ reason: "CreateContainerConfigError", message });
  for (const f of container.envFrom ?? []) {
    const ref = f.configMapRef ?? f.secretRef;
    const kind = f.configMapRef ? "configmap" : "secret";
    if (!ref?.name) continue;
    const data = (f.configMapRef ? sources.configMaps : sources.secrets).get(ref.name);
    if (!data) {
      if (ref.optional) continue;
      return configError(`${kind} "${ref.name}" not found`);
    }
    for (const [k, v] of Object.entries(data)) {
      const name = `${f.prefix ?? ""}${k}`;
      if (ENV_NAME.test(name)) env[name] = v;
    }
  }
  for (const e of container.env ?? []) {
    const from = e.valueFrom;
    if (!from) {
      env[e.name] = expandVars(e.value ?? "", env);
      continue;
    }
    const keyRef = from.configMapKeyRef ?? from.secretKeyRef;
    if (keyRef) {
      const kind = from.configMapKeyRef ? "ConfigMap" : "Secret";
      const data = (from.configMapKeyRef ? sources.configMaps : sources.secrets).get(keyRef.name ?? "");
      const value = data?.[keyRef.key];
      if (value === undefined) {
        if (keyRef.optional) continue;
        return configError(
          data
            ? `couldn't find key ${keyRef.key} in ${kind} ${ns}/${keyRef.name ?? ""}`
            : `${kind.toLowerCase()} "${keyRef.name ?? ""}" not found`,
        );
      }
      env[e.name] = value;
      continue;
    }
    const path = from.fieldRef?.fieldPath;
    const value = path === undefined ? undefined : fieldRefValue(pod, facts, path);
    if (value === undefined) {
      const what = path ?? Object.keys(from).join(",");
      return configError(
        `env ${e.name}: valueFrom ${what} is not supported by the local node agent (fieldRef status.podIP(s), status.hostIP, spec.nodeName, spec.serviceAccountName, metadata.name/namespace/uid/labels/annotations, configMapKeyRef and secretKeyRef are)`,
      );
    }
    env[e.name] = value;
  }
  return { env };
}

/** The argv a container runs: its command, or its image's registered entrypoint; `$(VAR)` expanded. */
export function resolveCommand(
  container: V1Container,
  env: Readonly<Record<string, string>>,
  entrypoints: EntrypointRegistry,
): { command: string[] } | LaunchFailure {
  const args = (container.args ?? []).map((a) => expandVars(a, env));
  if (container.command && container.command.length > 0) {
    return { command: [...container.command.map((c) => expandVars(c, env)), ...args] };
  }
  const image = normalizeImage(container.image ?? "");
  const ep = entrypoints.get(image);
  if (!ep) {
    const known = [...entrypoints.keys()].join(", ");
    return {
      reason: "StartError",
      message: `container ${container.name}: no command and no local entrypoint for image "${container.image ?? ""}" (images are not pulled; give the container a command, or use an image with a local entrypoint: ${known})`,
    };
  }
  return { command: [...ep.entrypoint, ...(container.args ? args : ep.cmd)] };
}

/** May `uid`/`gid` (with supplementary `groups`) use `path` with permission bits `bit` (4 read, 1 exec)? */
function permits(
  st: { mode: number; uid: number; gid: number },
  uid: number,
  gids: readonly number[],
  bit: number,
): boolean {
  if (uid === 0) return bit !== 1 || (st.mode & 0o111) !== 0;
  if (st.uid === uid) return ((st.mode >> 6) & bit) === bit;
  if (gids.includes(st.gid)) return ((st.mode >> 3) & bit) === bit;
  return (st.mode & bit) === bit;
}

/** Why `uid` cannot execute `file` (every directory on the way must be searchable), or undefined when it can. */
export function checkExecutable(
  file: string,
  uid: number,
  gids: readonly number[],
  probe: FileProbe,
): string | undefined {
  const parts = file.split("/").filter(Boolean);
  let dir = "";
  for (const part of parts.slice(0, -1)) {
    dir += `/${part}`;
    const st = probe.stat(dir);
    if (!st) return `${file}: no such file or directory`;
    if (!permits(st, uid, gids, 1))
      return `${file}: permission denied: directory ${dir} is not searchable by uid ${uid}`;
  }
  const st = probe.stat(file);
  if (!st) return `${file}: no such file or directory`;
  if (!st.isFile) return `${file}: not a regular file`;
  if (!permits(st, uid, gids, 1)) return `${file}: permission denied: not executable by uid ${uid}`;
  // A script is read by its interpreter as the container's uid: it needs r as well as x.
  const interpreter = probe.shebang?.(file);
  if (interpreter !== undefined && !permits(st, uid, gids, 4)) {
    return `${file}: permission denied: script not readable by uid ${uid} (its interpreter ${interpreter} must read it)`;
  }
  return undefined;
}

/** Finds `name` on `PATH` like execvp; absolute and relative paths are taken as they are. */
export function lookPath(name: string, path: string, probe: FileProbe): string | undefined {
  if (name.includes("/")) return name;
  for (const dir of path.split(":")) {
    const candidate = `${dir || "."}/${name}`;
    const st = probe.stat(candidate);
    if (st?.isFile && (st.mode & 0o111) !== 0) return candidate;
  }
  return undefined;
}

/** Builds the full launch of a container, or why it cannot start. */
export function buildContainerLaunch(
  pod: V1Pod,
  container: V1Container,
  facts: PodFacts,
  entrypoints: EntrypointRegistry,
  probe: FileProbe,
  sources: EnvSources = NO_ENV_SOURCES,
): ContainerLaunch | LaunchFailure {
  const psc = pod.spec?.securityContext;
  const sc = container.securityContext;
  const uid = sc?.runAsUser ?? psc?.runAsUser ?? 0;
  const gid = sc?.runAsGroup ?? psc?.runAsGroup ?? (uid === 0 ? 0 : uid);
  const groups = [...(psc?.supplementalGroups ?? []), ...(psc?.fsGroup !== undefined ? [psc.fsGroup] : [])];
  if ((sc?.runAsNonRoot ?? psc?.runAsNonRoot) && uid === 0) {
    return {
      reason: "CreateContainerConfigError",
      message: "container has runAsNonRoot and image will run as root",
    };
  }
  const envResult = buildEnv(pod, container, facts, uid, sources);
  if ("reason" in envResult) return envResult;
  const { env } = envResult;
  const cmd = resolveCommand(container, env, entrypoints);
  if ("reason" in cmd) return cmd;
  const [name, ...rest] = cmd.command;
  if (name === undefined || name === "") {
    return { reason: "StartError", message: `container ${container.name}: empty command` };
  }
  const file = lookPath(name, env.PATH ?? DEFAULT_PATH, probe);
  if (!file) {
    return {
      reason: "StartError",
      message: `exec: "${name}": executable file not found in $PATH (${env.PATH ?? DEFAULT_PATH}); commands resolve on the host`,
    };
  }
  const denied = checkExecutable(file, uid, [gid, ...groups], probe);
  if (denied) return { reason: "StartError", message: `exec: ${denied}` };
  const cwd = container.workingDir || "/";
  // Checked here: Node reports a missing cwd as "spawn nsenter ENOENT", which would name the wrong culprit.
  if (!probe.stat(cwd)?.isDirectory) {
    return { reason: "StartError", message: `chdir to cwd ("${cwd}") failed: no such directory on the host` };
  }
  const caps = effectiveCapabilities(container);
  const wrapper = [
    ...joinArgv(facts.netnsPath, facts.holderPid, cwd, hostNamespacesOf(pod)),
    "setpriv",
    `--reuid=${uid}`,
    `--regid=${gid}`,
    ...(groups.length > 0 ? [`--groups=${groups.join(",")}`] : ["--clear-groups"]),
    ...(caps === "all" ? [] : [`--bounding-set=-all${caps.map((c) => `,+${c.toLowerCase()}`).join("")}`]),
    ...(sc?.allowPrivilegeEscalation === false ? ["--no-new-privs"] : []),
    "--",
  ];
  return {
    argv: [...wrapper, file, ...rest],
    command: [file, ...rest],
    env,
    cwd,
    uid,
    gid,
  };
}
