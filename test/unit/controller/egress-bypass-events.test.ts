import assert from "node:assert/strict";
import { test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import pino from "pino";
import {
  EgressBypassReporter,
  egressBypassEvent,
  type RecordPodEvent,
} from "../../../src/controller/egress-bypass-events.ts";

function pod(name: string, uid: string, securityContext?: Record<string, unknown>): V1Pod {
  return {
    metadata: { name, namespace: "curl", uid },
    spec: {
      containers: [
        { name: "curl", image: "curl", ...(securityContext ? { securityContext } : {}) },
        { name: "envoy", image: "osm-ts/sidecar", securityContext: { runAsUser: 1500 } },
      ],
    },
  };
}
const ROOT = undefined;
const SAFE = { runAsUser: 1000, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } };

test("the event names the container and its path to the proxy uid, and its name follows the pod's uid", () => {
  const event = egressBypassEvent(pod("curl-1", "uid-1", ROOT));
  assert.ok(event);
  assert.match(event.message, /^egress is disabled, but its traffic can bypass the sidecar: /);
  assert.match(
    event.message,
    /container "curl" runs as its image's user .* with CAP_SETUID: it can switch to uid 1500/,
  );
  assert.doesNotMatch(event.message, /"envoy"/, "the sidecar itself is not an app container");
  assert.equal(event.name, egressBypassEvent(pod("curl-1", "uid-1", ROOT))?.name);
  assert.notEqual(event.name, egressBypassEvent(pod("curl-1", "uid-2", ROOT))?.name);
  assert.match(event.name, /^curl-1\.[0-9a-f]{16}$/);
  const privileged = egressBypassEvent(pod("p", "u", { runAsUser: 1000, privileged: true }));
  assert.match(privileged?.message ?? "", /container "curl" is privileged/);
  const netAdmin = egressBypassEvent(pod("n", "u", { ...SAFE, capabilities: { add: ["NET_ADMIN"] } }));
  assert.match(netAdmin?.message ?? "", /container "curl" has CAP_NET_ADMIN/);
});

test("no event for a pod none of whose containers can reach the proxy uid", () => {
  assert.equal(egressBypassEvent(pod("safe", "u", SAFE)), undefined);
  assert.equal(
    egressBypassEvent(pod("strict", "u", { capabilities: { drop: ["SETUID", "SETGID"] } })),
    undefined,
  );
});

test("the reporter records once per pod, however often it reconciles, and forgets deleted pods", async () => {
  const posted: string[] = [];
  const record: RecordPodEvent = async (p, e) => {
    posted.push(`${p.metadata?.name} ${e.name}`);
    return "created";
  };
  const reporter = new EgressBypassReporter(record, pino({ level: "silent" }));
  const pods = [pod("curl-1", "uid-1", ROOT), pod("safe", "uid-2", SAFE)];
  for (let i = 0; i < 5; i++) {
    reporter.reconcile(pods);
    await reporter.idle();
  }
  assert.equal(posted.length, 1);
  assert.match(posted[0] ?? "", /^curl-1 curl-1\./);
  // A new pod with the same name (recreated) has a new uid: its own event.
  reporter.reconcile([pod("curl-1", "uid-3", ROOT)]);
  await reporter.idle();
  assert.equal(posted.length, 2);
  assert.notEqual(posted[0], posted[1]);
});

test("an event that already exists (a restarted controller) counts as recorded; a failed post is retried", async () => {
  let calls = 0;
  let fail = true;
  const record: RecordPodEvent = async () => {
    calls++;
    if (fail) throw Object.assign(new Error("apiserver unavailable"), { code: 503 });
    return "exists";
  };
  const reporter = new EgressBypassReporter(record, pino({ level: "silent" }));
  const p = pod("curl-1", "uid-1", ROOT);
  reporter.reconcile([p]);
  await reporter.idle();
  assert.equal(calls, 1);
  fail = false;
  reporter.reconcile([p]);
  await reporter.idle();
  reporter.reconcile([p]);
  await reporter.idle();
  assert.equal(calls, 2, "retried once after the failure, then never again");
});
