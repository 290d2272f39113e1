/**
 * Bad requests answered as kube-apiserver answers them: deep nesting → 400, unknown content types → 415,
 * selector grammar → 400 with the parser's message, a watch from a future resourceVersion opened, a list
 * from one → 504 "Too large resource version". Then a fast-check fuzz over bodies, content types,
 * selectors, names and paths: never a 500, the server stays up, and a refused request leaves the store as it
 * was (the store's resourceVersion is one global counter that every write bumps).
 */
import assert from "node:assert/strict";
import { Agent, request } from "node:https";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { type EmbeddedApiServer, startEmbeddedApiServer } from "../../support/apiserver.ts";
import { tempDir } from "./helpers.ts";

interface Answer {
  readonly code: number;
  readonly body: string;
}

describe("bad requests, as kube-apiserver answers them", () => {
  const dir = tempDir("bad-requests");
  let api: EmbeddedApiServer;
  let agent: Agent;

  const call = (method: string, path: string, body?: string | Buffer, contentType?: string) =>
    new Promise<Answer>((resolve, reject) => {
      const headers: Record<string, string> = { authorization: `Bearer ${api.server.token}` };
      if (contentType !== undefined) headers["content-type"] = contentType;
      // Node's client frames no body of a DELETE by itself (neither length nor chunks): the server would read it
      // as the next request on the connection, and answer that one's parse error in place of the DELETE.
      if (body !== undefined) headers["content-length"] = String(Buffer.byteLength(body));
      const req = request(`${api.server.url}${path}`, { method, agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ code: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      });
      req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path}: no answer in 10 s`)));
      req.on("error", reject);
      req.end(body);
    });
  const storeVersion = async () => {
    const r = await call("GET", "/api/v1/namespaces");
    assert.equal(r.code, 200, r.body);
    return (JSON.parse(r.body) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
  };
  /** Waits until the controllers are done reacting to an accepted write (two equal reads 200 ms apart). */
  const quiet = async () => {
    let last = await storeVersion();
    for (;;) {
      await new Promise((r) => setTimeout(r, 200));
      const now = await storeVersion();
      if (now === last) return;
      last = now;
    }
  };
  const message = (a: Answer) => (JSON.parse(a.body) as { message: string }).message;

  before(async () => {
    api = await startEmbeddedApiServer(dir.path, "bad-requests");
    agent = new Agent({ ca: api.server.caPem });
    const made = await call(
      "POST",
      "/api/v1/namespaces/default/configmaps",
      JSON.stringify({ metadata: { name: "kept", labels: { app: "web" } }, data: { a: "1" } }),
      "application/json",
    );
    assert.equal(made.code, 201, made.body);
  });
  after(async () => {
    agent.destroy();
    await api.server.close();
    dir.remove();
  });

  it("a 2,000-level nested body is a 400, in JSON and YAML, for create, update and patch", async () => {
    const before = await storeVersion();
    const deep = `${'{"a":'.repeat(2000)}1${"}".repeat(2000)}`;
    const bodies: [string, string, string, string][] = [
      [
        "POST",
        "/api/v1/namespaces/default/configmaps",
        `{"metadata":{"name":"x"},"data":${deep}}`,
        "application/json",
      ],
      [
        "PUT",
        "/api/v1/namespaces/default/configmaps/kept",
        `{"metadata":{"name":"kept"},"x":${deep}}`,
        "application/json",
      ],
      [
        "PATCH",
        "/api/v1/namespaces/default/configmaps/kept",
        `{"x":${deep}}`,
        "application/merge-patch+json",
      ],
      [
        "POST",
        "/api/v1/namespaces/default/pods",
        `{"metadata":{"name":"p"},"spec":${deep}}`,
        "application/json",
      ],
      [
        "POST",
        "/api/v1/namespaces/default/configmaps",
        `metadata: {name: y}\ndata: ${"[".repeat(2000)}${"]".repeat(2000)}`,
        "application/yaml",
      ],
    ];
    for (const [method, path, body, ct] of bodies) {
      const a = await call(method, path, body, ct);
      assert.equal(a.code, 400, `${method} ${path} (${ct}): ${a.body}`);
      assert.match(message(a), /exceeded max depth of 1000/);
    }
    assert.equal(await storeVersion(), before);
  });

  it("a body in a type that is not JSON, YAML or protobuf is a 415 naming the accepted types", async () => {
    const cm = JSON.stringify({ metadata: { name: "plain" }, data: { a: "1" } });
    const created = await call("POST", "/api/v1/namespaces/default/configmaps", cm, "text/plain");
    assert.equal(created.code, 415, created.body);
    assert.equal(
      message(created),
      "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf",
    );
    const patched = await call(
      "PATCH",
      "/api/v1/namespaces/default/configmaps/kept",
      "{}",
      "application/json",
    );
    assert.equal(patched.code, 415, patched.body);
    assert.match(message(patched), /accepted media types include: application\/json-patch\+json, /);
    const missing = await call("GET", "/api/v1/namespaces/default/configmaps/plain");
    assert.equal(missing.code, 404);
  });

  it("label and field selectors with kube-apiserver's grammar: a 400 with its parser's message", async () => {
    const answers: [string, string][] = [
      ["labelSelector=!!x", "unable to parse requirement: found '!', expected: identifier"],
      ["labelSelector=a==b==c", "found '==', expected: ',' or 'end of string'"],
      ["labelSelector=a=b,", "found '', expected: identifier after ','"],
      ["fieldSelector=a%3D%3Db%3D%3Dc", "invalid field selector: unescaped character in value: 61"],
    ];
    for (const [query, want] of answers) {
      const a = await call("GET", `/api/v1/namespaces/default/configmaps?${query}`);
      assert.equal(a.code, 400, `${query}: ${a.body}`);
      assert.equal(message(a), want);
      const watched = await call("GET", `/api/v1/namespaces/default/configmaps?watch=true&${query}`);
      assert.equal(watched.code, 400, `watch ${query}: ${watched.body}`);
    }
    const listed = await call("GET", "/api/v1/namespaces/default/configmaps?labelSelector=app%20in%20(web)");
    assert.deepEqual(
      (JSON.parse(listed.body) as { items: { metadata: { name: string } }[] }).items.map(
        (i) => i.metadata.name,
      ),
      ["kept"],
    );
  });

  it("a watch from a future resourceVersion is opened and gets what happens after it; a list waits, then 504", async () => {
    const current = Number(await storeVersion());
    const future = current + 2;
    const events: string[] = [];
    const watching = new Promise<number>((resolve, reject) => {
      const req = request(
        `${api.server.url}/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=5&resourceVersion=${future}`,
        {
          agent: new Agent({ ca: api.server.caPem }),
          headers: { authorization: `Bearer ${api.server.token}` },
        },
        (res) => {
          res.setEncoding("utf8");
          res.on("data", (line: string) => {
            for (const l of line.split("\n").filter(Boolean)) {
              const e = JSON.parse(l) as { type: string; object: { metadata: { name: string } } };
              events.push(`${e.type} ${e.object.metadata.name}`);
            }
            if (events.length >= 1) req.destroy();
          });
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", (e) => (e.message.includes("aborted") ? undefined : reject(e)));
      req.end();
    });
    assert.equal(await watching, 200);
    for (const name of ["f1", "f2", "f3"]) {
      const a = await call(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        JSON.stringify({ metadata: { name } }),
        "application/json",
      );
      assert.equal(a.code, 201, a.body);
    }
    const deadline = Date.now() + 5000;
    while (events.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(events, ["ADDED f3"], "only the events after the requested resourceVersion");

    const far = Number(await storeVersion()) + 1000;
    const started = Date.now();
    const listed = await call("GET", `/api/v1/namespaces/default/configmaps?resourceVersion=${far}`);
    assert.equal(listed.code, 504, listed.body);
    assert.ok(Date.now() - started >= 2900, "the list waited for the store to catch up first");
    const status = JSON.parse(listed.body) as {
      reason: string;
      message: string;
      details: { causes: { reason: string }[] };
    };
    assert.equal(status.reason, "Timeout");
    assert.match(status.message, new RegExp(`^Timeout: Too large resource version: ${far}, current: \\d+$`));
    assert.equal(status.details.causes[0]?.reason, "ResourceVersionTooLarge");
  });

  it("fuzz: bodies, content types, selectors, names and paths never get a 500, and a refusal changes nothing", async () => {
    const resources = [
      "/api/v1/namespaces/default/configmaps",
      "/api/v1/namespaces/default/pods",
      "/api/v1/namespaces/default/services",
      "/apis/apps/v1/namespaces/default/deployments",
      "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
      "/apis/config.openservicemesh.io/v1alpha2/namespaces/default/meshconfigs",
    ];
    const contentTypes = [
      "application/json",
      "application/yaml",
      "application/vnd.kubernetes.protobuf",
      "application/merge-patch+json",
      "application/json-patch+json",
      "application/strategic-merge-patch+json",
      "application/apply-patch+yaml",
      "text/plain",
      "application/x-www-form-urlencoded",
      "",
    ];
    const nested = fc
      .tuple(fc.integer({ min: 1, max: 3000 }), fc.constantFrom("[", '{"a":'))
      .map(([n, open]) => `${open.repeat(n)}1${(open === "[" ? "]" : "}").repeat(n)}`);
    const body = fc.oneof(
      fc.json({ maxDepth: 6 }),
      fc
        .record({
          metadata: fc.record({ name: fc.string(), labels: fc.dictionary(fc.string(), fc.string()) }),
          spec: fc.jsonValue({ maxDepth: 4 }),
          data: fc.jsonValue({ maxDepth: 3 }),
        })
        .map((o) => JSON.stringify(o)),
      nested,
      fc.string({ maxLength: 200 }),
      fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString("latin1")),
    );
    const selectorChars = fc.constantFrom(..."ab=!(),<> \\.-/_in1".split(""), "in", "notin", "==", "!=");
    const selector = fc.array(selectorChars, { maxLength: 12 }).map((p) => p.join(""));
    const name = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constantFrom("kept", "x", "..", "a:b", "%00", "A_b"),
    );
    const segment = fc.oneof(
      name.map((n) => encodeURIComponent(n)),
      fc.constantFrom(
        "status",
        "scale",
        "finalize",
        "exec",
        "log",
        "proxy",
        "binding",
        "eviction",
        "namespaces",
        "default",
        "%2F",
      ),
    );
    const path = fc.oneof(
      fc
        .tuple(fc.constantFrom(...resources), fc.array(segment, { maxLength: 3 }))
        .map(([r, s]) => [r, ...s].join("/")),
      fc.array(segment, { maxLength: 6 }).map((s) => `/${s.join("/")}`),
      fc
        .tuple(
          fc.constantFrom("/api", "/apis", "/apis/apps", "/api/v2", "/apis/x/y/z"),
          fc.array(segment, { maxLength: 4 }),
        )
        .map(([p, s]) => [p, ...s].join("/")),
    );
    const query = fc
      .record(
        {
          labelSelector: selector,
          fieldSelector: selector,
          resourceVersion: fc.oneof(fc.constantFrom("0", "", "-1", "abc", "1e3"), fc.nat(5).map(String)),
          dryRun: fc.constantFrom("All", "x"),
          fieldValidation: fc.constantFrom("Strict", "Warn", "Ignore", "Bogus"),
          gracePeriodSeconds: fc.constantFrom("0", "-1", "x", "30"),
          propagationPolicy: fc.constantFrom("Orphan", "Background", "Foreground", "Bogus"),
        },
        { requiredKeys: [] },
      )
      .map((q) => new URLSearchParams(q).toString());
    const method = fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE");
    let requests = 0;
    await fc.assert(
      fc.asyncProperty(
        method,
        path,
        query,
        body,
        fc.constantFrom(...contentTypes),
        async (m, p, q, b, ct) => {
          const before = await storeVersion();
          const a = await call(m, q ? `${p}?${q}` : p, m === "GET" ? undefined : b, ct || undefined);
          requests++;
          assert.ok(a.code < 500, `${m} ${p}?${q} (${ct}) → ${a.code}: ${a.body.slice(0, 300)}`);
          if (a.code >= 400)
            assert.equal(await storeVersion(), before, `refused ${m} ${p}?${q} changed the store`);
          else await quiet();
          const health = await call("GET", "/healthz");
          assert.equal(health.code, 200);
        },
      ),
      // A fixed seed keeps CI repeatable; OSMT_FUZZ_SEED explores others.
      { numRuns: 400, seed: Number(process.env.OSMT_FUZZ_SEED ?? 20261203) },
    );
    assert.equal(requests >= 400, true);
    const kept = await call("GET", "/api/v1/namespaces/default/configmaps/kept");
    assert.ok(kept.code === 200 || kept.code === 404, kept.body);
  });
});
