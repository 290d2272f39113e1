import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import jsonpatch from "fast-json-patch";
import { injectPod, proxyUidPaths } from "../../../src/injector/index.ts";
import { meshConfig, namespace, OPTIONS, pod, SEEDS } from "./builders.ts";

const STRICT = "osm-ts.io/egress-strict";
const disabled = meshConfig({ traffic: { enableEgress: false } });

function withContainer(p: V1Pod, c: Partial<V1Container>, podUid?: number): V1Pod {
  const spec = p.spec as NonNullable<V1Pod["spec"]>;
  spec.containers = [{ ...(spec.containers[0] as V1Container), ...c }];
  if (podUid !== undefined) spec.securityContext = { runAsUser: podUid };
  return p;
}

function applied(p: V1Pod, result: ReturnType<typeof inject>): V1Pod {
  assert.equal(result.kind, "inject");
  const ops = (result.kind === "inject" ? result.patch : []) as jsonpatch.Operation[];
  return jsonpatch.applyPatch(structuredClone(p), ops, true, false).newDocument;
}

function inject(p: V1Pod, ns = namespace(), config = disabled, options = OPTIONS) {
  return injectPod({ pod: p, namespace: ns, meshConfig: config, options, seeds: SEEDS });
}

describe("the proxy uid is the sidecar's alone", () => {
  test("an app container with runAsUser 1500 is denied, naming the container and the field", () => {
    const result = inject(withContainer(pod(), { securityContext: { runAsUser: 1500 } }));
    assert.equal(result.kind, "deny");
    assert.equal(
      result.kind === "deny" && result.message,
      'container "curl" would run as uid 1500 (spec.containers[0].securityContext.runAsUser), the sidecar\'s uid: its traffic would bypass the sidecar',
    );
    assert.match(result.kind === "deny" ? (result.hint ?? "") : "", /run it as another uid/);
  });

  test("a pod-level runAsUser 1500 denies too (and an init container's)", () => {
    const byPod = inject(withContainer(pod(), {}, 1500));
    assert.match(byPod.kind === "deny" ? byPod.message : "", /\(spec\.securityContext\.runAsUser\)/);
    const init = pod({ initContainers: [{ name: "setup", image: "busybox" }] });
    (init.spec?.initContainers?.[0] as V1Container).securityContext = { runAsUser: 1500 };
    const byInit = inject(init);
    assert.match(
      byInit.kind === "deny" ? byInit.message : "",
      /^init container "setup" would run as uid 1500/,
    );
  });

  test("a container's own runAsUser wins over the pod's 1500", () => {
    const result = inject(withContainer(pod(), { securityContext: { runAsUser: 1000 } }, 1500));
    assert.equal(result.kind, "inject");
  });

  test("with egress disabled, a root container is admitted with a warning naming the setuid path", () => {
    const result = inject(pod());
    assert.equal(result.kind, "inject");
    const warnings = result.kind === "inject" ? result.warnings : [];
    assert.ok(
      warnings.some((w) =>
        w.startsWith(
          'proxy-uid-reachable: container "curl" runs as its image\'s user (root unless the image says otherwise) with CAP_SETUID',
        ),
      ),
      warnings.join("\n"),
    );
    const enabled = inject(pod(), namespace(), meshConfig({ traffic: { enableEgress: true } }));
    assert.ok(enabled.kind === "inject" && !enabled.warnings.some((w) => w.startsWith("proxy-uid")));
  });

  test("paths: root, non-root with escalation, privileged, NET_ADMIN; none when dropped or non-root without escalation", () => {
    assert.deepEqual(proxyUidPaths(withContainer(pod(), { securityContext: { runAsUser: 0 } })), [
      'container "curl" runs as root with CAP_SETUID: it can switch to uid 1500 (e.g. setpriv --reuid 1500)',
    ]);
    assert.match(
      proxyUidPaths(withContainer(pod(), { securityContext: { runAsUser: 1000 } }))[0] ?? "",
      /uid 1000 but keeps CAP_SETUID .* a setuid-root program/,
    );
    assert.match(
      proxyUidPaths(withContainer(pod(), { securityContext: { privileged: true } }))[0] ?? "",
      /is privileged/,
    );
    assert.match(
      proxyUidPaths(
        withContainer(pod(), { securityContext: { capabilities: { add: ["NET_ADMIN"], drop: ["SETUID"] } } }),
      ).join("\n"),
      /CAP_NET_ADMIN: it can rewrite the interception rules/,
    );
    assert.deepEqual(
      proxyUidPaths(withContainer(pod(), { securityContext: { capabilities: { drop: ["CAP_SETUID"] } } })),
      [],
    );
    assert.deepEqual(
      proxyUidPaths(
        withContainer(pod(), { securityContext: { runAsUser: 1000, allowPrivilegeEscalation: false } }),
      ),
      [],
    );
  });
});

describe("strict egress (osm-ts.io/egress-strict)", () => {
  const strictNs = namespace("curl", {
    annotations: { "openservicemesh.io/sidecar-injection": "enabled", [STRICT]: "enabled" },
  });

  test("drops CAP_SETUID and CAP_SETGID from every app container, leaving no path to the proxy uid", () => {
    const p = pod({ initContainers: [{ name: "setup", image: "busybox" }] });
    const result = inject(p, strictNs);
    const patched = applied(p, result);
    for (const c of [patched.spec?.containers[0], patched.spec?.initContainers?.[0]]) {
      assert.deepEqual(c?.securityContext?.capabilities?.drop, ["SETUID", "SETGID"]);
    }
    assert.equal(
      patched.spec?.containers.find((c) => c.name === "envoy")?.securityContext?.capabilities,
      undefined,
    );
    assert.deepEqual(proxyUidPaths(patched), []);
    assert.ok(result.kind === "inject" && !result.warnings.some((w) => w.startsWith("proxy-uid")));
  });

  test("appends to an existing drop list, and leaves drop ALL alone", () => {
    const p = withContainer(pod(), { securityContext: { capabilities: { drop: ["NET_RAW"] } } });
    const result = inject(p, namespace(), disabled, { ...OPTIONS, egressStrict: true });
    const patched = applied(p, result);
    assert.deepEqual(patched.spec?.containers[0]?.securityContext?.capabilities?.drop, [
      "NET_RAW",
      "SETUID",
      "SETGID",
    ]);
    const all = withContainer(pod(), { securityContext: { capabilities: { drop: ["ALL"] } } });
    const r2 = inject(all, strictNs);
    assert.ok(r2.kind === "inject" && !r2.patch.some((op) => op.path.includes("securityContext")));
  });

  test("denies privileged app containers and added SETUID/NET_ADMIN; the pod's annotation overrides", () => {
    const priv = inject(withContainer(pod(), { securityContext: { privileged: true } }), strictNs);
    assert.match(
      priv.kind === "deny" ? priv.message : "",
      /container "curl" is privileged, which strict egress/,
    );
    const caps = inject(
      withContainer(pod(), { securityContext: { capabilities: { add: ["NET_ADMIN", "CHOWN"] } } }),
      strictNs,
    );
    assert.match(
      caps.kind === "deny" ? caps.message : "",
      /adds capabilities NET_ADMIN, which strict egress/,
    );
    const optOut = inject(
      withContainer(pod({ annotations: { [STRICT]: "disabled" } }), {
        securityContext: { privileged: true },
      }),
      strictNs,
    );
    assert.equal(optOut.kind, "inject");
  });

  test("an invalid value is denied naming the annotation and the value", () => {
    const result = inject(pod({ annotations: { [STRICT]: "maybe" } }));
    assert.equal(
      result.kind === "deny" && result.message,
      'Invalid annotation value for key "osm-ts.io/egress-strict": maybe',
    );
  });
});
