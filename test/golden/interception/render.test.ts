import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { describe, it } from "node:test";
import { buildPlan, renderIptables, renderNft } from "../../../src/interception/index.ts";
import { INTERCEPTION_CASES } from "./cases.ts";
import { buildTestPolicy } from "./policy-builder.ts";

const dir = new URL("./", import.meta.url);
const update = process.env["UPDATE_GOLDEN"] === "1";

function golden(file: string, actual: string): void {
  const url = new URL(file, dir);
  if (update || !existsSync(url)) {
    if (!update) assert.fail(`golden file ${file} is missing; run with UPDATE_GOLDEN=1 to create it`);
    writeFileSync(url, actual);
    return;
  }
  assert.equal(actual, readFileSync(url, "utf8"), `${file} differs (UPDATE_GOLDEN=1 rewrites it)`);
}

// OSM v1.2.4 pkg/injector/iptables_test.go and init_container_test.go expectations, written out literally
// from docs/osm-behaviour.md §1.2–§1.4 (not produced by our renderer).
const HEAD = `iptables-restore --noflush <<EOF
# OSM sidecar interception rules
*nat
:OSM_PROXY_INBOUND - [0:0]
:OSM_PROXY_IN_REDIRECT - [0:0]
:OSM_PROXY_OUTBOUND - [0:0]
:OSM_PROXY_OUT_REDIRECT - [0:0]
-A OSM_PROXY_IN_REDIRECT -p tcp -j REDIRECT --to-port 15003
-A PREROUTING -p tcp -j OSM_PROXY_INBOUND
-A OSM_PROXY_INBOUND -p tcp --dport 15010 -j RETURN
-A OSM_PROXY_INBOUND -p tcp --dport 15901 -j RETURN
-A OSM_PROXY_INBOUND -p tcp --dport 15902 -j RETURN
-A OSM_PROXY_INBOUND -p tcp --dport 15903 -j RETURN
-A OSM_PROXY_INBOUND -p tcp --dport 15904 -j RETURN
-A OSM_PROXY_INBOUND -p tcp -j OSM_PROXY_IN_REDIRECT
`;
const OUT_STATIC = `-A OSM_PROXY_OUT_REDIRECT -p tcp -j REDIRECT --to-port 15001
-A OSM_PROXY_OUT_REDIRECT -p tcp --dport 15000 -j ACCEPT
-A OUTPUT -p tcp -j OSM_PROXY_OUTBOUND
-A OSM_PROXY_OUTBOUND -o lo ! -d 127.0.0.1/32 -m owner --uid-owner 1500 -j OSM_PROXY_IN_REDIRECT
-A OSM_PROXY_OUTBOUND -o lo -m owner ! --uid-owner 1500 -j RETURN
-A OSM_PROXY_OUTBOUND -m owner --uid-owner 1500 -j RETURN
-A OSM_PROXY_OUTBOUND -d 127.0.0.1/32 -j RETURN
`;
const OSM_EXPECTED: Record<string, string> = {
  "osm-no-exclusions-or-inclusions": `${HEAD}${OUT_STATIC}-A OSM_PROXY_OUTBOUND -j OSM_PROXY_OUT_REDIRECT
COMMIT
EOF
`,
  "osm-with-exclusions-and-inclusions": `${HEAD}-I OSM_PROXY_INBOUND -i eth0 -j RETURN
-I OSM_PROXY_INBOUND -i eth1 -j RETURN
-I OSM_PROXY_INBOUND -p tcp --match multiport --dports 30,40 -j RETURN
${OUT_STATIC}-A OSM_PROXY_OUTBOUND -o eth0 -j RETURN
-A OSM_PROXY_OUTBOUND -o eth1 -j RETURN
-A OSM_PROXY_OUTBOUND -d 1.1.1.1/32 -j RETURN
-A OSM_PROXY_OUTBOUND -d 2.2.2.2/24 -j RETURN
-A OSM_PROXY_OUTBOUND -p tcp --match multiport --dports 10,20 -j RETURN
-A OSM_PROXY_OUTBOUND -d 3.3.3.3/32 -j OSM_PROXY_OUT_REDIRECT
-A OSM_PROXY_OUTBOUND -d 4.4.4.4/24 -j OSM_PROXY_OUT_REDIRECT
-A OSM_PROXY_OUTBOUND -j RETURN
COMMIT
EOF
`,
  "osm-proxy-mode-pod-ip": `${HEAD}${OUT_STATIC}-I OUTPUT -p tcp -o lo -d 127.0.0.1/32 -m owner --uid-owner 1500 -j DNAT --to-destination $POD_IP
-A OSM_PROXY_OUTBOUND -j OSM_PROXY_OUT_REDIRECT
COMMIT
EOF
`,
};

describe("interception golden files", () => {
  for (const c of INTERCEPTION_CASES) {
    it(`renders case ${c.name} as the golden .restore and .nft text`, () => {
      const plan = buildPlan(buildTestPolicy(c.input), c.ipv6 ? { ipv6: true } : {});
      golden(`${c.name}.restore`, renderIptables(plan));
      golden(`${c.name}.nft`, renderNft(plan));
    });
  }
});

describe("OSM v1.2.4 generateIptablesCommands compatibility", () => {
  for (const [name, expected] of Object.entries(OSM_EXPECTED)) {
    it(`reproduces OSM's expected script for "${name}" byte for byte`, () => {
      const c = INTERCEPTION_CASES.find((x) => x.name === name)!;
      assert.equal(renderIptables(buildPlan(buildTestPolicy(c.input))), expected);
    });
  }
});

describe("renderer invariants", () => {
  it("gives every nft rule of every case an osm/ comment", () => {
    for (const c of INTERCEPTION_CASES) {
      const text = renderNft(buildPlan(buildTestPolicy(c.input)));
      const ruleLines = text
        .split("\n")
        .filter(
          (l) =>
            l.startsWith("\t\t") &&
            !/type (nat|filter) hook/.test(l) &&
            /\b(return|jump|redirect|dnat|accept|drop)\b/.test(l),
        );
      assert.ok(ruleLines.length > 10, c.name);
      for (const l of ruleLines) assert.match(l, / comment "osm\/[a-z0-9_-]+"$/, `${c.name}: ${l}`);
    }
  });

  it("splits more than 15 ports into multiport rules of at most 15", () => {
    const plan = buildPlan(
      buildTestPolicy({ outboundPortExclusionList: Array.from({ length: 31 }, (_, i) => 7000 + i) }),
    );
    const lines = renderIptables(plan)
      .split("\n")
      .filter((l) => l.includes("--dports"));
    assert.deepEqual(
      lines.map((l) => l.split("--dports ")[1]!.split(" ")[0]!.split(",").length),
      [15, 15, 1],
    );
  });

  it("puts IPv6 entries only into the ip6tables payload, with ::1/128 for loopback", () => {
    const script = renderIptables(
      buildPlan(buildTestPolicy({ outboundIPRangeExclusionList: ["2001:db8::/64", "203.0.113.1/32"] })),
    );
    const [v4, v6] = script.split("ip6tables-restore");
    assert.ok(v4 && v6);
    assert.ok(!v4.includes("2001:db8"));
    assert.match(v6, /-A OSM_PROXY_OUTBOUND -d 2001:db8::\/64 -j RETURN/);
    assert.match(v6, /-A OSM_PROXY_OUTBOUND -d ::1\/128 -j RETURN/);
    assert.ok(!v6.includes("203.0.113.1"));
    assert.ok(script.startsWith("set -e\n"));
  });
});
