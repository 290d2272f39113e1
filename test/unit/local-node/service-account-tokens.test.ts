import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { CoreV1Api, V1Pod } from "@kubernetes/client-node";
import pino from "pino";
import { sidecarTokenMount, sidecarTokenVolume } from "../../../src/config/sidecar-token.ts";
import {
  projectedTokenVolumes,
  refreshDelayMs,
  ServiceAccountTokens,
  tokenFileOwner,
  tokenRequestFor,
  tokenRequestUnserved,
} from "../../../src/local/node/service-account-tokens.ts";
import { until } from "../../support/poll.ts";

const pod = (spec: Partial<NonNullable<V1Pod["spec"]>>): V1Pod => ({
  metadata: { name: "web-1", namespace: "shop", uid: "u-1" },
  spec: { containers: [], ...spec } as V1Pod["spec"],
});

/** client-node's error shape: the HTTP code and the Status body as text. */
const apiError = (code: number, body: unknown) =>
  Object.assign(new Error(`HTTP ${code}`), { code, body: JSON.stringify(body) });

describe("per-pod service-account tokens", () => {
  test("the TokenRequest is bound to the pod, for its service account, as its projected volume asks", () => {
    assert.deepEqual(tokenRequestFor(pod({ serviceAccountName: "api" })), {
      namespace: "shop",
      serviceAccount: "api",
      body: {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: {
          expirationSeconds: 3607,
          boundObjectRef: { apiVersion: "v1", kind: "Pod", name: "web-1", uid: "u-1" },
        },
      },
    });
    const projected = pod({
      volumes: [
        {
          name: "kube-api-access-x",
          projected: {
            sources: [{ serviceAccountToken: { path: "token", audience: "vault", expirationSeconds: 900 } }],
          },
        },
      ],
    });
    const spec = tokenRequestFor(projected).body.spec;
    assert.equal(tokenRequestFor(projected).serviceAccount, "default");
    assert.deepEqual([spec.audiences, spec.expirationSeconds], [["vault"], 900]);
  });

  test("a projected token volume is materialized where containers mount it, and is not the service account directory's", () => {
    const sidecar = pod({
      containers: [{ name: "envoy", volumeMounts: [sidecarTokenMount()] }],
      volumes: [sidecarTokenVolume()],
    });
    assert.deepEqual(projectedTokenVolumes(sidecar), [
      {
        name: "osm-sidecar-token",
        mountPaths: ["/var/run/secrets/osm-ts.io/sidecar"],
        sources: [{ audience: "osm-controller", expirationSeconds: 3600, path: "token" }],
      },
    ]);
    // The pod's own API token keeps the API server's audience and the kubelet's lifetime.
    assert.deepEqual(tokenRequestFor(sidecar).body.spec.audiences, undefined);
    assert.equal(tokenRequestFor(sidecar).body.spec.expirationSeconds, 3607);
    const [source] = projectedTokenVolumes(sidecar)[0]?.sources ?? [];
    assert.deepEqual(tokenRequestFor(sidecar, source).body.spec, {
      audiences: ["osm-controller"],
      expirationSeconds: 3600,
      boundObjectRef: { apiVersion: "v1", kind: "Pod", name: "web-1", uid: "u-1" },
    });
    // Its files belong to the uid that mounts it (0600); no single non-root uid: the projected default, 0644.
    const as = (uid: number | undefined) => ({ name: "c", securityContext: { runAsUser: uid } });
    const mounting = (...containers: { name: string; securityContext: { runAsUser?: number } }[]) =>
      pod({
        containers: containers.map((c) => ({ ...c, volumeMounts: [sidecarTokenMount()] })),
        volumes: [sidecarTokenVolume()],
      });
    assert.deepEqual(tokenFileOwner(mounting(as(1500)), "osm-sidecar-token"), { uid: 1500, gid: 0 });
    assert.equal(tokenFileOwner(mounting(as(1500), as(1501)), "osm-sidecar-token"), undefined);
    assert.equal(tokenFileOwner(mounting(as(0)), "osm-sidecar-token"), undefined);
    assert.equal(tokenFileOwner(mounting(as(undefined)), "osm-sidecar-token"), undefined);
    // Not mounted anywhere, or mixed with other sources (kube-api-access-*): not one of these.
    assert.deepEqual(projectedTokenVolumes(pod({ volumes: [sidecarTokenVolume()] })), []);
  });

  test("refresh at 80 % of the lifetime; an unserved TokenRequest is told apart from a missing service account", () => {
    assert.equal(refreshDelayMs(0, 3_607_000), 2_885_600);
    assert.equal(refreshDelayMs(0, 365 * 24 * 3_600_000), 2 ** 31 - 1);
    assert.equal(
      tokenRequestUnserved(
        apiError(404, { reason: "NotFound", message: "the server could not find the requested resource" }),
      ),
      true,
    );
    assert.equal(tokenRequestUnserved(apiError(405, {})), true);
    const missing = apiError(404, { reason: "NotFound", details: { name: "api", kind: "serviceaccounts" } });
    assert.equal(tokenRequestUnserved(missing), false);
    assert.equal(tokenRequestUnserved(apiError(403, {})), false);
  });

  test("the token file is rewritten with a fresh token before the old one expires; a refused request is an error", async () => {
    const dir = mkdtempSync(join(tmpdir(), "osmt-tokens-"));
    let issued = 0;
    const core = {
      createNamespacedServiceAccountToken: async () => {
        issued += 1;
        return { status: { token: `token-${issued}`, expirationTimestamp: new Date(Date.now() + 1500) } };
      },
      readNamespacedConfigMap: async () => ({ data: { "ca.crt": "ROOT CA" } }),
    } as unknown as CoreV1Api;
    const tokens = new ServiceAccountTokens(core, "FALLBACK CA", pino({ level: "silent" }));
    try {
      const file = join(dir, "serviceaccount", "token");
      mkdirSync(join(dir, "serviceaccount"));
      assert.deepEqual(await tokens.credentials(pod({}), file), { token: "token-1", caPem: "ROOT CA" });
      // A projected volume's token is written at once, then kept fresh the same way.
      const projectedFile = join(dir, "serviceaccount", "osm-token");
      await tokens.project(pod({}), { audience: "osm-controller", path: "osm-token" }, projectedFile);
      assert.equal(readFileSync(projectedFile, "utf8"), "token-2");
      await until(
        "a refreshed token in the file",
        () => {
          try {
            return /^token-[3-9]$/.test(readFileSync(file, "utf8")) ? true : undefined;
          } catch {
            return undefined;
          }
        },
        5000,
        50,
      );
      rmSync(join(dir, "serviceaccount"), { recursive: true });
      const before = issued;
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(issued, before, "no refresh once the pod's folder is gone");
    } finally {
      tokens.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    const refusing = new ServiceAccountTokens(
      {
        createNamespacedServiceAccountToken: async () => {
          throw apiError(403, { message: 'serviceaccounts "api" is forbidden: no relationship found' });
        },
      } as unknown as CoreV1Api,
      "",
      pino({ level: "silent" }),
    );
    await assert.rejects(
      refusing.credentials(pod({ serviceAccountName: "api" }), "/nonexistent/token"),
      /failed to fetch token for service account shop\/api: serviceaccounts "api" is forbidden/,
    );
    const unserved = new ServiceAccountTokens(
      {
        createNamespacedServiceAccountToken: async () => Promise.reject(apiError(404, {})),
      } as unknown as CoreV1Api,
      "",
      pino({ level: "silent" }),
    );
    assert.equal(await unserved.credentials(pod({}), "/nonexistent/token"), null);
  });
});
