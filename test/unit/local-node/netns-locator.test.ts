import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import {
  candidateGroups,
  type NetnsGroup,
  parseFibTrieLocal,
  parseIfInet6,
  parseIpAddrJson,
  podReadyForUpdate,
  selectPodNamespace,
} from "../../../src/local/node/netns-locator.ts";

const FIB_TRIE = `Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 198.51.100.0/24 2 0 2
           |-- 198.51.100.0
              /24 link UNICAST
           |-- 198.51.100.7
              /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
           |-- 198.51.100.7
              /32 host LOCAL
`;

const IF_INET6 = `00000000000000000000000000000001 01 80 10 80       lo
20010db8000100000000000000000007 02 40 00 80     eth0
fe80000000000000c81bdbfffe8b6a11 02 40 20 80     eth0
`;

const group = (id: string, pids: number[], addresses: string[]): NetnsGroup => ({
  id,
  pids,
  localAddresses: new Set(addresses),
});
const eth0 = (...addresses: string[]) => ({ name: "eth0", loopback: false, addresses });
const lo = (...addresses: string[]) => ({ name: "lo", loopback: true, addresses });

describe("finding a pod's network namespace from /proc (pure parts)", () => {
  test("fib_trie: the /32 host LOCAL leaves, once each (not broadcast, not the subnet)", () => {
    assert.deepEqual(parseFibTrieLocal(FIB_TRIE), ["127.0.0.1", "198.51.100.7"]);
  });

  test("if_inet6: every address, canonical", () => {
    assert.deepEqual(parseIfInet6(IF_INET6), ["::1", "2001:db8:1::7", "fe80::c81b:dbff:fe8b:6a11"]);
  });

  test("ip -j addr: names, the LOOPBACK flag, canonical addresses", () => {
    const json = JSON.stringify([
      { ifname: "lo", flags: ["LOOPBACK", "UP"], addr_info: [{ local: "127.0.0.1" }, { local: "::1" }] },
      { ifname: "eth0", flags: ["BROADCAST", "UP"], addr_info: [{ local: "2001:DB8:1:0::7" }] },
    ]);
    assert.deepEqual(parseIpAddrJson(json), [
      { name: "lo", loopback: true, addresses: ["127.0.0.1", "::1"] },
      { name: "eth0", loopback: false, addresses: ["2001:db8:1::7"] },
    ]);
  });

  test("candidates: the namespaces with the pod IP among their local addresses, IPv6 written any way", () => {
    const groups = [group("net:[1]", [1], ["192.0.2.9"]), group("net:[2]", [40, 41], ["2001:db8:1::7"])];
    assert.deepEqual(
      candidateGroups(groups, "2001:db8:1:0:0:0:0:7").map((g) => g.id),
      ["net:[2]"],
    );
    assert.deepEqual(candidateGroups(groups, "198.51.100.7"), []);
    assert.deepEqual(candidateGroups(groups, "not-an-ip"), []);
  });

  test("selection: the one namespace with the IP on a non-loopback interface; on loopback only it is not a pod's", () => {
    const pod = group("net:[2]", [40, 41], ["198.51.100.7"]);
    const external = group("net:[3]", [50], ["198.51.100.7"]);
    assert.equal(
      selectPodNamespace(
        [
          { group: external, interfaces: [lo("127.0.0.1", "198.51.100.7")] },
          { group: pod, interfaces: [lo("127.0.0.1"), eth0("198.51.100.7")] },
        ],
        "198.51.100.7",
      ),
      pod,
    );
    assert.equal(
      selectPodNamespace([{ group: external, interfaces: [lo("198.51.100.7")] }], "198.51.100.7"),
      undefined,
    );
    assert.equal(selectPodNamespace([], "198.51.100.7"), undefined);
  });

  test("selection: two namespaces holding the IP is refused, naming both (never the wrong pod's rules)", () => {
    const a = group("net:[2]", [40], ["198.51.100.7"]);
    const b = group("net:[3]", [50], ["198.51.100.7"]);
    assert.throws(
      () =>
        selectPodNamespace(
          [
            { group: a, interfaces: [eth0("198.51.100.7")] },
            { group: b, interfaces: [eth0("198.51.100.7")] },
          ],
          "198.51.100.7",
        ),
      /pod IP 198\.51\.100\.7 is on a non-loopback interface in 2 network namespaces \(net:\[2\] of pid 40, net:\[3\] of pid 50\); refusing to guess/,
    );
  });

  test("a pod is brought up to date once running and initialized, not on its way out, and never a hostNetwork pod", () => {
    const ready: V1Pod = {
      metadata: { uid: "u" },
      spec: { containers: [] },
      status: {
        phase: "Running",
        podIP: "198.51.100.7",
        conditions: [{ type: "Initialized", status: "True" }],
      },
    };
    assert.equal(podReadyForUpdate(ready), true);
    const initializing = structuredClone(ready);
    initializing.status!.conditions = [{ type: "Initialized", status: "False" }];
    assert.equal(podReadyForUpdate(initializing), false, "osm-init still running");
    const leaving = structuredClone(ready);
    leaving.metadata!.deletionTimestamp = new Date();
    assert.equal(podReadyForUpdate(leaving), false);
    const host = structuredClone(ready);
    host.spec!.hostNetwork = true;
    assert.equal(podReadyForUpdate(host), false);
    const noIp = structuredClone(ready);
    delete noIp.status!.podIP;
    assert.equal(podReadyForUpdate(noIp), false);
  });
});
