import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConfigError } from "../../../src/errors.ts";
import { smiCrds } from "../../../src/smi/crd.ts";
import { compileHttpMatches, findHttpMatch, type HttpRequestFacts } from "../../../src/smi/http-match.ts";
import type { HttpRouteGroup } from "../../../src/smi/http-route-group.ts";
import { validateSmiObject } from "../../../src/smi/validate.ts";

const validateHttpRouteGroup = (input: unknown) => validateSmiObject(input).object as HttpRouteGroup;

const group = (spec: unknown) => ({
  apiVersion: "specs.smi-spec.io/v1alpha4",
  kind: "HTTPRouteGroup",
  metadata: { name: "httpbin-status", namespace: "curl" },
  spec,
});

function issues(input: unknown) {
  try {
    validateHttpRouteGroup(input);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.issues.map((i) => ({ path: i.path, value: i.value, reason: i.reason }));
  }
  assert.fail("expected a ConfigError");
}

describe("HTTPRouteGroup validation", () => {
  test("OSM's egress demo group is valid", () => {
    const valid = validateHttpRouteGroup(group({ matches: [{ name: "status", pathRegex: "/status.*" }] }));
    assert.equal(valid.spec.matches[0]?.pathRegex, "/status.*");
  });

  test("a path regex RE2 cannot compile is refused with the reason and a hint", () => {
    const problems = issues(group({ matches: [{ name: "a", pathRegex: "/(?=x)" }] }));
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.path, "spec.matches[0].pathRegex");
    assert.equal(problems[0]?.value, "/(?=x)");
    assert.match(problems[0]?.reason ?? "", /is not a valid RE2 regular expression: .*\(\?=/);
  });

  test("unknown methods, bad header names and values, missing names and duplicates are all reported at once", () => {
    const problems = issues(
      group({
        matches: [
          { name: "a", methods: ["GET", "FETCH"] },
          { name: "a", headers: [{ "user agent": "x" }, { "x-ok": "(" }] },
          { pathRegex: "/x" },
        ],
      }),
    );
    assert.deepEqual(
      problems.map((p) => p.path),
      [
        "spec.matches[0].methods[1]",
        "spec.matches[1].headers[0].user agent",
        "spec.matches[1].headers[1].x-ok",
        "spec.matches[2].name",
        "spec.matches[1].name",
      ],
    );
  });

  test("duplicate match names are refused once the rest is valid", () => {
    const problems = issues(group({ matches: [{ name: "a" }, { name: "a" }] }));
    assert.deepEqual(problems, [
      { path: "spec.matches[1].name", value: "a", reason: "is the name of an earlier match" },
    ]);
  });

  test("an empty match list, a wrong apiVersion and an unknown field are refused", () => {
    const problems = issues({
      ...group({ matches: [], pathRegx: "/" }),
      apiVersion: "specs.smi-spec.io/v1alpha3",
    });
    assert.deepEqual(
      problems.map((p) => p.path),
      ["apiVersion", "spec.matches", "spec.pathRegx"],
    );
  });
});

describe("HTTP match evaluator (Envoy's route semantics as OSM builds them)", () => {
  const request = (over: Partial<HttpRequestFacts>): HttpRequestFacts => ({
    method: "GET",
    path: "/status/200",
    headers: { host: "httpbin.org" },
    ...over,
  });
  const compiled = (matches: unknown) =>
    compileHttpMatches(validateHttpRouteGroup(group({ matches })).spec.matches);

  test("the path regex must match the whole path; the query string is ignored", () => {
    const m = compiled([{ name: "status", pathRegex: "/status.*" }]);
    assert.equal(findHttpMatch(m, request({}))?.name, "status");
    assert.equal(findHttpMatch(m, request({ path: "/status/418?x=/get" }))?.name, "status");
    assert.equal(findHttpMatch(m, request({ path: "/get" })), undefined);
    assert.equal(findHttpMatch(m, request({ path: "/x/status" })), undefined, "no partial match");
  });

  test("no path regex and no methods match anything; * is any method", () => {
    assert.ok(findHttpMatch(compiled([{ name: "all" }]), request({ method: "DELETE", path: "/" })));
    assert.ok(findHttpMatch(compiled([{ name: "all", methods: ["GET", "*"] }]), request({ method: "PUT" })));
  });

  test("methods restrict the match", () => {
    const m = compiled([{ name: "read", methods: ["GET", "HEAD"] }]);
    assert.ok(findHttpMatch(m, request({ method: "HEAD" })));
    assert.equal(findHttpMatch(m, request({ method: "POST" })), undefined);
  });

  test("every header condition must hold on the whole value; names are case-insensitive; host is the Host", () => {
    const m = compiled([
      { name: "h", headers: [{ "User-Agent": "curl/.*" }, { host: "httpbin\\.org(:80)?" }] },
    ]);
    assert.ok(findHttpMatch(m, request({ headers: { host: "httpbin.org:80", "user-agent": "curl/8.1" } })));
    assert.equal(
      findHttpMatch(m, request({ headers: { host: "httpbin.org" } })),
      undefined,
      "missing header",
    );
    assert.equal(
      findHttpMatch(m, request({ headers: { host: "httpbin.org", "user-agent": "xcurl/8" } })),
      undefined,
    );
    assert.equal(
      findHttpMatch(m, request({ headers: { host: "evil.org", "user-agent": "curl/8" } })),
      undefined,
    );
  });

  test("any one of several matches is enough; the first that holds is named", () => {
    const m = compiled([
      { name: "status", pathRegex: "/status/.*" },
      { name: "get", pathRegex: "/get", methods: ["GET"] },
    ]);
    assert.equal(findHttpMatch(m, request({ path: "/get" }))?.name, "get");
    assert.equal(findHttpMatch(m, request({ path: "/get", method: "POST" })), undefined);
  });
});

describe("the HTTPRouteGroup CRD", () => {
  test("serves specs.smi-spec.io/v1alpha4 HTTPRouteGroup (short name htr) with OSM's method enum", () => {
    const crd = smiCrds().find(
      (c) => (c["metadata"] as { name: string }).name === "httproutegroups.specs.smi-spec.io",
    ) as { spec: { names: { shortNames: string[] }; versions: { name: string; schema: unknown }[] } };
    assert.deepEqual(crd.spec.names.shortNames, ["htr"]);
    assert.deepEqual(
      crd.spec.versions.map((v) => v.name),
      ["v1alpha4"],
    );
    assert.match(JSON.stringify(crd.spec.versions[0]?.schema), /"enum":\["\*","GET","HEAD"/);
  });
});
