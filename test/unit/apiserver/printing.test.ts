import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeProtobufObject } from "../../../src/local/apiserver/protobuf.ts";
import {
  fieldValue,
  matchesRequirements,
  parseFieldSelector,
  parseLabelSelector,
} from "../../../src/local/apiserver/selectors.ts";
import { humanDuration, podColumns } from "../../../src/local/apiserver/table.ts";

const now = Date.parse("2026-11-25T12:00:00Z");
const running = { ready: true, restartCount: 0, state: { running: {} } };

describe("pod printing, durations, selectors and protobuf", () => {
  it("prints READY/STATUS/RESTARTS as kubectl does for running and initializing pods", () => {
    const spec = {
      initContainers: [{ name: "osm-init" }],
      containers: [{ name: "curl" }, { name: "envoy" }],
    };
    const cases: [string, Record<string, unknown>, { ready: string; status: string; restarts: string }][] = [
      [
        "two ready containers",
        { phase: "Running", containerStatuses: [running, running] },
        { ready: "2/2", status: "Running", restarts: "0" },
      ],
      [
        "a failed init container",
        {
          phase: "Pending",
          initContainerStatuses: [
            { restartCount: 0, state: { terminated: { exitCode: 1, reason: "Error" } } },
          ],
        },
        { ready: "0/2", status: "Init:Error", restarts: "0" },
      ],
      [
        "an init container in back-off",
        {
          phase: "Pending",
          initContainerStatuses: [{ restartCount: 3, state: { waiting: { reason: "CrashLoopBackOff" } } }],
        },
        { ready: "0/2", status: "Init:CrashLoopBackOff", restarts: "3" },
      ],
      [
        "an init container running",
        { phase: "Pending", initContainerStatuses: [{ restartCount: 0, state: { running: {} } }] },
        { ready: "0/2", status: "Init:0/1", restarts: "0" },
      ],
      [
        "a container waiting",
        {
          phase: "Running",
          containerStatuses: [
            running,
            { ready: false, restartCount: 2, state: { waiting: { reason: "CrashLoopBackOff" } } },
          ],
        },
        { ready: "1/2", status: "CrashLoopBackOff", restarts: "2" },
      ],
    ];
    for (const [name, status, want] of cases) assert.deepEqual(podColumns({ spec, status }, now), want, name);
    assert.equal(
      podColumns({ metadata: { deletionTimestamp: "x" }, spec, status: { phase: "Running" } }, now).status,
      "Terminating",
    );
  });

  it("renders ages like kubectl's HumanDuration", () => {
    const s = 1000;
    assert.deepEqual(
      [
        5 * s,
        119 * s,
        150 * s,
        600 * s,
        3 * 3600 * s + 60 * s,
        9 * 3600 * s,
        3 * 86400 * s + 3600 * s,
        400 * 86400 * s,
      ].map(humanDuration),
      ["5s", "119s", "2m30s", "10m", "3h1m", "9h", "3d1h", "400d"],
    );
  });

  it("matches label selectors with =, ==, !=, in, notin, exists and !exists", () => {
    const labels: Record<string, string> = { app: "curl", tier: "web" };
    const m = (s: string) => matchesRequirements(parseLabelSelector(s), (k) => labels[k]);
    assert.equal(m("app=curl"), true);
    assert.equal(m("app==curl,tier!=db"), true);
    assert.equal(m("app in (curl, web),!missing"), true);
    assert.equal(m("tier notin (web)"), false);
    assert.equal(m("missing"), false);
    const pod = { metadata: { name: "p" }, spec: { nodeName: "osm-local" } };
    assert.equal(
      matchesRequirements(parseFieldSelector("spec.nodeName=osm-local,metadata.name!=q"), (k) =>
        fieldValue(pod, k),
      ),
      true,
    );
  });

  it("decodes the protobuf body kubectl create namespace sends", () => {
    // The exact bytes measured from kubectl 1.32 (docs/kubectl-api.md §3).
    const hex =
      "6b3873000a0f0a02763112094e616d657370616365121c0a140a046375726c12001a0022002a0032003800420012001a020a001a002200";
    assert.deepEqual(decodeProtobufObject(Buffer.from(hex, "hex")), {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "curl" },
    });
  });
});
