/**
 * `osm demo egress-policy`'s step list: OSM's egress policy demo (HTTP, HTTPS, TCP, HTTP with SMI route
 * matches) plus HTTP by address range, with egress disabled, against the embedded engine's external hosts
 * that the cluster DNS names httpbin.org and openservicemesh.io. Each policy is applied to the running curl
 * pod, shown allowing its destination (200), refusing the others, and deleted (refused again): never a restart.
 * Pure: it only builds argv arrays and expectations; the runner executes them.
 */
import type { Expectation } from "./expect.ts";
import type { Step } from "./runner.ts";
import {
  curlFromPod,
  curlWithEgressDisabled,
  execInCurlPod,
  explainCurlPod,
  OK_200,
  REFUSED,
} from "./steps.ts";

/** An external host of the demo: the name the cluster DNS gives it and its one address. */
export interface NamedHost {
  readonly name: string;
  readonly address: string;
}

/** OSM's demo's destinations, on the embedded engine's external hosts (documentation addresses). */
export const HTTPBIN: NamedHost = { name: "httpbin.org", address: "203.0.113.10" };
export const OPENSERVICEMESH: NamedHost = { name: "openservicemesh.io", address: "203.0.113.11" };

export interface EgressDemoStepOptions {
  /** How to run osm, e.g. `["osm"]`. */
  readonly osm: readonly string[];
  readonly kubectl: string;
  /** examples/guide (curl.yaml). */
  readonly examplesDir: string;
  /** examples/egress-policy (the Egress and HTTPRouteGroup manifests). */
  readonly policiesDir: string;
  /** Steps that bring the mesh up and the external hosts in. */
  readonly setup: readonly Step[];
}

/** A TLS client refused by the sidecar also sees curl's (35) (connection reset during the handshake). */
const REFUSED_TLS: Expectation = {
  exitCodeIn: [7, 35, 52, 56],
  output: [/curl: \((7|35|52|56)\)/],
  describe:
    "refused (curl: (7) no listener, (35) reset in the TLS handshake, (52)/(56) closed by the sidecar)",
};
const NOT_FOUND_404: Expectation = {
  stdout: [/HTTP\/1\.1 404 Not Found/],
  describe: '"HTTP/1.1 404 Not Found"',
};

/** A policy arrives at the running sidecar through the controller's watch: give it time, re-try every second. */
const UNTIL_APPLIED = { timeoutMs: 60_000, intervalMs: 1000 };

/** Builds the demo's steps, in order, after the runtime's own setup steps. */
export function buildEgressPolicySteps(o: EgressDemoStepOptions): Step[] {
  const k = o.kubectl;
  const curl = (
    title: string,
    url: string,
    expect: Expectation,
    options: { flags?: readonly string[]; wait?: boolean } = {},
  ): Step => ({
    kind: "command",
    title,
    argv: curlFromPod(k, url, options.flags),
    expect,
    ...(options.wait ? { waitUntil: UNTIL_APPLIED } : {}),
  });
  const apply = (file: string, title: string, created: readonly RegExp[]): Step => ({
    kind: "command",
    title,
    argv: [k, "apply", "-f", `${o.policiesDir}/${file}`],
    expect: { stdout: [...created] },
  });
  const remove = (file: string, deleted: readonly RegExp[]): Step => ({
    kind: "command",
    title: "Delete the policy",
    argv: [k, "delete", "-f", `${o.policiesDir}/${file}`],
    expect: { stdout: [...deleted] },
  });
  const explain = (
    title: string,
    host: NamedHost,
    port: number,
    expected: RegExp,
    more: readonly string[] = [],
  ): Step => ({
    kind: "command",
    title,
    argv: explainCurlPod(o.osm, `${host.address}:${port}`, ["--host", host.name, ...more]),
    expect: { stdout: [expected] },
  });
  // kubectl's words: `egress.policy.openservicemesh.io/NAME created`, `… "NAME" deleted`.
  const created = (kind: string, name: string) =>
    new RegExp(`${kind.replaceAll(".", "\\.")}/${name} created`);
  const deleted = (kind: string, name: string) =>
    new RegExp(`${kind.replaceAll(".", "\\.")} "${name}" deleted`);
  const EGRESS = "egress.policy.openservicemesh.io";
  const ROUTE_GROUP = "httproutegroup.specs.smi-spec.io";
  const httpbinGet = `http://${HTTPBIN.name}/get`;
  const httpbinTls = `https://${HTTPBIN.name}/get`;
  const otherHttp = `http://${OPENSERVICEMESH.name}/`;
  const otherTls = `https://${OPENSERVICEMESH.name}/`;
  // -k: the stand-ins' certificate is signed by the demo's own CA, which the pod does not trust.
  const tls = { flags: ["-k"] };
  return [
    ...o.setup,
    ...curlWithEgressDisabled(o),
    {
      kind: "command",
      title: `${HTTPBIN.name} resolves in the pod through the cluster DNS`,
      argv: execInCurlPod(k, ["getent", "hosts", HTTPBIN.name]),
      expect: { stdout: [new RegExp(`^${HTTPBIN.address.replaceAll(".", "\\.")}\\s+${HTTPBIN.name}`, "m")] },
    },
    curl(`curl ${httpbinGet}: refused (egress is disabled, no Egress policy)`, httpbinGet, REFUSED),

    // OSM's demo, "HTTP Egress": by host name.
    apply("httpbin-80.yaml", `HTTP by host name: allow ${HTTPBIN.name} on port 80 (Egress httpbin-80)`, [
      created(EGRESS, "httpbin-80"),
    ]),
    curl(
      `curl ${httpbinGet}: allowed (the sidecar checked the Host header), no restart`,
      httpbinGet,
      OK_200,
      {
        wait: true,
      },
    ),
    curl(`curl ${otherHttp}: refused (no Egress lists ${OPENSERVICEMESH.name})`, otherHttp, REFUSED),
    explain(
      `Explain: Egress curl/httpbin-80 allows ${HTTPBIN.name} on ${HTTPBIN.address}:80`,
      HTTPBIN,
      80,
      /→ allowed: Egress curl\/httpbin-80 allows it/,
    ),
    explain(
      `Explain: nothing allows ${OPENSERVICEMESH.name} on ${OPENSERVICEMESH.address}:80`,
      OPENSERVICEMESH,
      80,
      /→ refused: .*no Egress for service account curl allows host openservicemesh\.io on 203\.0\.113\.11:80/,
    ),
    remove("httpbin-80.yaml", [deleted(EGRESS, "httpbin-80")]),
    curl(`curl ${httpbinGet}: refused again`, httpbinGet, REFUSED, { wait: true }),

    // "HTTP Egress with SMI route matches".
    apply(
      "httpbin-80-get.yaml",
      `HTTP by host name and path: allow ${HTTPBIN.name}/get only (HTTPRouteGroup egress-http-route)`,
      [created(ROUTE_GROUP, "egress-http-route"), created(EGRESS, "httpbin-80")],
    ),
    curl(`curl ${httpbinGet}: allowed (the path matches)`, httpbinGet, OK_200, { wait: true }),
    curl(
      `curl http://${HTTPBIN.name}/status/200: 404 from the sidecar (outside the match)`,
      `http://${HTTPBIN.name}/status/200`,
      NOT_FOUND_404,
    ),
    explain(
      "Explain: /status/200 is outside the HTTPRouteGroup's match",
      HTTPBIN,
      80,
      /→ answered 404 by the sidecar: Egress curl\/httpbin-80 allows the host, but none of its HTTPRouteGroup matches holds for GET \/status\/200/,
      ["--path", "/status/200"],
    ),
    remove("httpbin-80-get.yaml", [deleted(ROUTE_GROUP, "egress-http-route"), deleted(EGRESS, "httpbin-80")]),
    curl(`curl ${httpbinGet}: refused again`, httpbinGet, REFUSED, { wait: true }),

    // "HTTPS Egress": by the TLS server name.
    apply(
      "httpbin-443.yaml",
      `HTTPS by server name: allow ${HTTPBIN.name} on port 443 (Egress httpbin-443)`,
      [created(EGRESS, "httpbin-443")],
    ),
    curl(`curl -k ${httpbinTls}: allowed (the sidecar read the TLS server name)`, httpbinTls, OK_200, {
      ...tls,
      wait: true,
    }),
    curl(`curl -k ${otherTls}: refused (another server name)`, otherTls, REFUSED_TLS, tls),
    remove("httpbin-443.yaml", [deleted(EGRESS, "httpbin-443")]),
    curl(`curl -k ${httpbinTls}: refused again`, httpbinTls, REFUSED_TLS, { ...tls, wait: true }),

    // "TCP Egress": by port.
    apply("tcp-443.yaml", "TCP by port: allow any destination on port 443 (Egress tcp-443)", [
      created(EGRESS, "tcp-443"),
    ]),
    curl(`curl -k ${otherTls}: allowed (TCP to port 443)`, otherTls, OK_200, { ...tls, wait: true }),
    curl(`curl ${otherHttp}: refused (port 80)`, otherHttp, REFUSED),
    remove("tcp-443.yaml", [deleted(EGRESS, "tcp-443")]),
    curl(`curl -k ${otherTls}: refused again`, otherTls, REFUSED_TLS, { ...tls, wait: true }),

    // Not in OSM's demo (OSM never enforces ipAddresses on an http port): HTTP by address range.
    apply(
      "ip-range-80.yaml",
      `HTTP by address range: allow ${HTTPBIN.address}/32 on port 80 (Egress ip-range-80)`,
      [created(EGRESS, "ip-range-80")],
    ),
    curl(`curl ${httpbinGet}: allowed (${HTTPBIN.address} is in range)`, httpbinGet, OK_200, { wait: true }),
    curl(`curl ${otherHttp}: refused (${OPENSERVICEMESH.address} is not)`, otherHttp, REFUSED),
    remove("ip-range-80.yaml", [deleted(EGRESS, "ip-range-80")]),
    curl(`curl ${httpbinGet}: refused again`, httpbinGet, REFUSED, { wait: true }),

    {
      kind: "command",
      title: "The same curl pod ran throughout: never restarted",
      argv: (vars) => [
        k,
        "get",
        "pod",
        "-n",
        "curl",
        vars.get("curlPod") ?? "",
        "-o",
        'jsonpath={range .status.containerStatuses[*]}{.name} restarts={.restartCount}{"\\n"}{end}',
      ],
      expect: {
        stdout: [/^curl restarts=0$/m, /^envoy restarts=0$/m],
        describe: "both containers, restarts=0",
      },
    },
  ];
}
