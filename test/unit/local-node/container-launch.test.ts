import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import {
  buildContainerLaunch,
  buildEnv,
  checkExecutable,
  expandVars,
  type FileProbe,
  resolveCommand,
} from "../../../src/local/node/container-launch.ts";
import { builtinEntrypoints, normalizeImage } from "../../../src/local/node/entrypoints.ts";
import { holderArgv, JOIN_SCRIPT, joinArgv } from "../../../src/local/node/pod-namespaces.ts";

const facts = {
  podIP: "198.51.100.7",
  podIPs: ["198.51.100.7", "2001:db8:1::7"],
  hostIP: "198.51.100.1",
  nodeName: "osm-local",
  netnsPath: "/run/netns/osm-pod-7",
  holderPid: 4242,
};

/** A tiny fake filesystem: path → [mode, uid, gid, kind]. */
function fakeFs(entries: Record<string, [number, number, number, "d" | "f" | "s"]>): FileProbe {
  return {
    stat(path) {
      const e = entries[path];
      return e
        ? { mode: e[0], uid: e[1], gid: e[2], isFile: e[3] !== "d", isDirectory: e[3] === "d" }
        : undefined;
    },
    shebang: (path) => (entries[path]?.[3] === "s" ? "/bin/sh" : undefined),
  };
}

const fs = fakeFs({
  "/": [0o755, 0, 0, "d"],
  "/tmp": [0o1777, 0, 0, "d"],
  "/usr": [0o755, 0, 0, "d"],
  "/usr/bin": [0o755, 0, 0, "d"],
  "/usr/bin/sleep": [0o755, 0, 0, "f"],
  "/usr/bin/env": [0o755, 0, 0, "f"],
  "/root": [0o700, 0, 0, "d"],
  "/root/tool": [0o755, 0, 0, "f"],
  "/opt": [0o755, 0, 0, "d"],
  "/opt/owner-only": [0o700, 1500, 1500, "f"],
  "/opt/group-only": [0o750, 0, 42, "f"],
  "/opt/data.txt": [0o644, 0, 0, "f"],
  "/opt/script-x-only": [0o711, 0, 0, "s"],
  "/opt/binary-x-only": [0o711, 0, 0, "f"],
});

const pod = (spec: Partial<V1Pod["spec"]> = {}): V1Pod => ({
  metadata: { name: "curl-1", namespace: "curl", uid: "u-1", labels: { app: "curl" } },
  spec: { containers: [], serviceAccountName: "curl", ...spec } as V1Pod["spec"],
});

describe("$(VAR) expansion", () => {
  const cases: [string, string, Record<string, string>, string][] = [
    ["a known variable is replaced", "x=$(A)", { A: "1" }, "x=1"],
    ["an unknown variable stays as written", "x=$(B)", { A: "1" }, "x=$(B)"],
    ["$$ escapes a reference", "$$(A)", { A: "1" }, "$(A)"],
    ["shell-style $A is left to the shell", "$A and $A_B", { A: "1" }, "$A and $A_B"],
  ];
  for (const [name, text, vars, want] of cases) test(name, () => assert.equal(expandVars(text, vars), want));
});

describe("the container environment", () => {
  test("fieldRef status.podIP, metadata and labels resolve; later entries see earlier ones", () => {
    const c: V1Container = {
      name: "c",
      env: [
        { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
        { name: "IPS", valueFrom: { fieldRef: { fieldPath: "status.podIPs" } } },
        { name: "NS", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
        { name: "APP", valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
        { name: "SA", valueFrom: { fieldRef: { fieldPath: "spec.serviceAccountName" } } },
        { name: "URL", value: "http://$(POD_IP):80" },
      ],
    };
    const r = buildEnv(pod(), c, facts, 1500);
    assert.ok("env" in r);
    assert.equal(r.env.POD_IP, "198.51.100.7");
    assert.equal(r.env.IPS, "198.51.100.7,2001:db8:1::7");
    assert.equal(r.env.NS, "curl");
    assert.equal(r.env.APP, "curl");
    assert.equal(r.env.SA, "curl");
    assert.equal(r.env.URL, "http://198.51.100.7:80");
    assert.equal(r.env.HOSTNAME, "curl-1");
    assert.equal(r.env.HOME, "/");
  });

  test("envFrom, configMapKeyRef and secretKeyRef read the fetched sources; env overrides envFrom", () => {
    const c: V1Container = {
      name: "c",
      envFrom: [{ configMapRef: { name: "cfg" } }, { secretRef: { name: "creds" }, prefix: "S_" }],
      env: [
        { name: "LEVEL", valueFrom: { configMapKeyRef: { name: "cfg", key: "level" } } },
        { name: "TOKEN", valueFrom: { secretKeyRef: { name: "creds", key: "token" } } },
        { name: "MODE", value: "env-wins" },
        { name: "MAYBE", valueFrom: { configMapKeyRef: { name: "absent", key: "x", optional: true } } },
      ],
    };
    const sources = {
      configMaps: new Map([
        ["cfg", { level: "debug", MODE: "from-cfg", "bad name": "skipped" }],
        ["absent", null],
      ]),
      secrets: new Map([["creds", { token: "s3cret" }]]),
    };
    const r = buildEnv(pod(), c, facts, 0, sources);
    assert.ok("env" in r);
    assert.equal(r.env.level, "debug");
    assert.equal(r.env.S_token, "s3cret");
    assert.equal(r.env.LEVEL, "debug");
    assert.equal(r.env.TOKEN, "s3cret");
    assert.equal(r.env.MODE, "env-wins");
    assert.equal("MAYBE" in r.env, false);
    assert.equal("bad name" in r.env, false);
  });

  test("a missing Secret or key is a CreateContainerConfigError with the kubelet's wording", () => {
    const secret: V1Container = {
      name: "c",
      env: [{ name: "T", valueFrom: { secretKeyRef: { name: "s", key: "k" } } }],
    };
    const r1 = buildEnv(pod(), secret, facts, 0, { configMaps: new Map(), secrets: new Map([["s", null]]) });
    assert.deepEqual(r1, { reason: "CreateContainerConfigError", message: 'secret "s" not found' });
    const r2 = buildEnv(pod(), secret, facts, 0, {
      configMaps: new Map(),
      secrets: new Map([["s", { other: "1" }]]),
    });
    assert.deepEqual(r2, {
      reason: "CreateContainerConfigError",
      message: "couldn't find key k in Secret curl/s",
    });
    const from: V1Container = { name: "c", envFrom: [{ configMapRef: { name: "nope" } }] };
    assert.deepEqual(buildEnv(pod(), from, facts, 0), {
      reason: "CreateContainerConfigError",
      message: 'configmap "nope" not found',
    });
  });

  test("a resourceFieldRef is refused with CreateContainerConfigError naming the variable", () => {
    const c: V1Container = {
      name: "c",
      env: [{ name: "CPU", valueFrom: { resourceFieldRef: { resource: "limits.cpu" } } }],
    };
    const r = buildEnv(pod(), c, facts, 0);
    assert.ok("reason" in r);
    assert.equal(r.reason, "CreateContainerConfigError");
    assert.match(r.message, /^env CPU: valueFrom resourceFieldRef is not supported/);
  });
});

describe("the command a container runs", () => {
  const eps = builtinEntrypoints("/usr/bin/node");
  test("command and args are joined and expanded", () => {
    const r = resolveCommand({ name: "c", command: ["sleep"], args: ["$(T)"] }, { T: "365d" }, eps);
    assert.deepEqual(r, { command: ["sleep", "365d"] });
  });
  test("no command runs the image's registered entrypoint with its default args", () => {
    const r = resolveCommand({ name: "httpbin", image: "docker.io/kennethreitz/httpbin:latest" }, {}, eps);
    assert.ok("command" in r);
    assert.equal(r.command[0], "/usr/bin/node");
    assert.match(r.command[1] ?? "", /httpbin\.ts$/);
    assert.deepEqual(r.command.slice(2), ["--port", "80"]);
  });
  test("args replace the entrypoint's default args", () => {
    const r = resolveCommand({ name: "h", image: "kennethreitz/httpbin", args: ["--port", "8000"] }, {}, eps);
    assert.ok("command" in r);
    assert.deepEqual(r.command.slice(2), ["--port", "8000"]);
  });
  test("no command and an unknown image is a StartError naming the image", () => {
    const r = resolveCommand({ name: "x", image: "nginx:1.25" }, {}, eps);
    assert.ok("reason" in r);
    assert.equal(r.reason, "StartError");
    assert.match(r.message, /no local entrypoint for image "nginx:1\.25"/);
  });
  test("image references normalise to repository names", () => {
    assert.equal(normalizeImage("kennethreitz/httpbin:latest"), "kennethreitz/httpbin");
    assert.equal(normalizeImage("docker.io/library/busybox@sha256:abc"), "busybox");
    assert.equal(normalizeImage("localhost:5000/team/app:1"), "localhost:5000/team/app");
  });
});

describe("who may execute a file", () => {
  test("root may execute anything with an x bit, even under /root", () => {
    assert.equal(checkExecutable("/root/tool", 0, [0], fs), undefined);
  });
  test("uid 1500 cannot reach a file under /root", () => {
    assert.match(
      checkExecutable("/root/tool", 1500, [1500], fs) ?? "",
      /directory \/root is not searchable by uid 1500/,
    );
  });
  test("owner, group and other bits are honoured", () => {
    assert.equal(checkExecutable("/opt/owner-only", 1500, [1500], fs), undefined);
    assert.match(checkExecutable("/opt/owner-only", 1600, [1600], fs) ?? "", /not executable by uid 1600/);
    assert.equal(checkExecutable("/opt/group-only", 1600, [42], fs), undefined);
    assert.match(checkExecutable("/opt/data.txt", 0, [0], fs) ?? "", /not executable/);
    assert.match(checkExecutable("/opt/missing", 0, [0], fs) ?? "", /no such file/);
  });
  test("a script also needs read permission; a binary does not", () => {
    assert.equal(checkExecutable("/opt/binary-x-only", 1500, [1500], fs), undefined);
    assert.match(
      checkExecutable("/opt/script-x-only", 1500, [1500], fs) ?? "",
      /script not readable by uid 1500 \(its interpreter \/bin\/sh must read it\)/,
    );
    assert.equal(checkExecutable("/opt/script-x-only", 0, [0], fs), undefined);
  });
});

describe("the full launch", () => {
  test("runs in the pod's netns through setpriv with uid, gid, bounding set and no-new-privs", () => {
    const l = buildContainerLaunch(
      pod({ securityContext: { runAsGroup: 3000 } }),
      {
        name: "c",
        command: ["sleep", "1"],
        workingDir: "/tmp",
        securityContext: {
          runAsUser: 1500,
          allowPrivilegeEscalation: false,
          capabilities: { drop: ["ALL"] },
        },
      },
      facts,
      new Map(),
      fs,
    );
    assert.ok("argv" in l);
    assert.deepEqual(l.argv, [
      ...joinArgv("/run/netns/osm-pod-7", 4242, "/tmp"),
      "setpriv",
      "--reuid=1500",
      "--regid=3000",
      "--clear-groups",
      "--bounding-set=-all",
      "--no-new-privs",
      "--",
      "/usr/bin/sleep",
      "1",
    ]);
    assert.equal(l.cwd, "/tmp");
  });
  test("joins the pod's namespaces (holder's PID for children, mount, UTS, IPC) and adds the API service env first", () => {
    const l = buildContainerLaunch(
      pod(),
      { name: "c", command: ["sleep", "1"], env: [{ name: "KUBERNETES_SERVICE_PORT", value: "1" }] },
      { ...facts, serviceEnv: { KUBERNETES_SERVICE_HOST: "198.51.100.1", KUBERNETES_SERVICE_PORT: "6443" } },
      new Map(),
      fs,
    );
    assert.ok("argv" in l);
    assert.deepEqual(l.argv.slice(0, 9), [
      "nsenter",
      "--net=/run/netns/osm-pod-7",
      "--pid=/proc/4242/ns/pid_for_children",
      "--mount=/proc/4242/ns/mnt",
      "--uts=/proc/4242/ns/uts",
      "--ipc=/proc/4242/ns/ipc",
      "--wd=/",
      "--no-fork",
      "--",
    ]);
    // The container starts with default signal dispositions, below the signal-ignoring join script.
    assert.deepEqual(l.argv.slice(9, 18), [
      "sh",
      "-c",
      JOIN_SCRIPT,
      "osm-pod",
      "env",
      "--default-signal",
      "--",
      "setpriv",
      "--reuid=0",
    ]);
    assert.equal(l.env.KUBERNETES_SERVICE_HOST, "198.51.100.1");
    // The container's own env wins, as with the kubelet's service env.
    assert.equal(l.env.KUBERNETES_SERVICE_PORT, "1");
  });
  test("hostPID and hostIPC: the host's PID and IPC namespaces are kept (no pid_for_children, no ipc join); the drop-ALL-add capabilities of the osm-node DaemonSet", () => {
    const l = buildContainerLaunch(
      pod({ hostPID: true, hostIPC: true }),
      {
        name: "c",
        command: ["sleep", "1"],
        securityContext: {
          runAsUser: 0,
          capabilities: { drop: ["ALL"], add: ["NET_ADMIN", "NET_RAW", "SYS_ADMIN", "SYS_PTRACE"] },
        },
      },
      facts,
      new Map(),
      fs,
    );
    assert.ok("argv" in l);
    assert.deepEqual(l.argv.slice(0, 7), [
      "nsenter",
      "--net=/run/netns/osm-pod-7",
      "--mount=/proc/4242/ns/mnt",
      "--uts=/proc/4242/ns/uts",
      "--wd=/",
      "--no-fork",
      "--",
    ]);
    assert.ok(l.argv.includes("--bounding-set=-all,+net_admin,+net_raw,+sys_admin,+sys_ptrace"));
    const holder = holderArgv({
      netnsPath: "/run/netns/x",
      hostname: "h",
      mounts: [],
      hidden: [],
      host: { pid: true },
    });
    assert.deepEqual(holder.slice(0, 10), [
      "nsenter",
      "--net=/run/netns/x",
      "--",
      "unshare",
      "--mount",
      "--uts",
      "--ipc",
      "--propagation",
      "private",
      "--",
    ]);
    const own = holderArgv({ netnsPath: "/run/netns/x", hostname: "h", mounts: [], hidden: [] });
    assert.deepEqual(own.slice(4, 9), ["--pid", "--fork", "--kill-child", "--mount-proc", "--mount"]);
  });
  test("a command that is not on PATH is a StartError", () => {
    const l = buildContainerLaunch(pod(), { name: "c", command: ["nosuchtool"] }, facts, new Map(), fs);
    assert.ok("reason" in l);
    assert.match(l.message, /exec: "nosuchtool": executable file not found in \$PATH/);
  });
  test("a working directory that does not exist is a StartError naming it", () => {
    const l = buildContainerLaunch(
      pod(),
      { name: "c", command: ["sleep"], workingDir: "/nope" },
      facts,
      new Map(),
      fs,
    );
    assert.deepEqual(l, {
      reason: "StartError",
      message: 'chdir to cwd ("/nope") failed: no such directory on the host',
    });
  });
  test("runAsNonRoot without a uid is refused", () => {
    const l = buildContainerLaunch(
      pod({ securityContext: { runAsNonRoot: true } }),
      { name: "c", command: ["sleep"] },
      facts,
      new Map(),
      fs,
    );
    assert.ok("reason" in l);
    assert.equal(l.reason, "CreateContainerConfigError");
  });
});
