import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { resumeStateOf } from "../../../src/local/node/agent.ts";
import type { ContainerStateView, ContainerView, PodView } from "../../../src/local/node/pod-context.ts";
import { buildPodStatus, podPhase } from "../../../src/local/node/pod-status.ts";

const NOW = new Date("2026-01-01T00:00:00Z");
const LATER = new Date("2026-01-01T00:05:00Z");

const T = "2026-11-25T10:00:00Z";
const running: ContainerStateView = { running: { startedAt: T } };
const ok: ContainerStateView = { terminated: { exitCode: 0, reason: "Completed", finishedAt: T } };
const failed: ContainerStateView = { terminated: { exitCode: 3, reason: "Error", finishedAt: T } };
const backoff: ContainerStateView = { waiting: { reason: "CrashLoopBackOff", message: "back-off 10s" } };

function c(name: string, state: ContainerStateView, extra: Partial<ContainerView> = {}): ContainerView {
  return {
    name,
    image: "busybox",
    state,
    lastState: undefined,
    restartCount: 0,
    ready: "running" in state,
    started: "running" in state,
    startupPassed: "running" in state,
    containerID: undefined,
    ...extra,
  };
}

function view(extra: Partial<PodView>): PodView {
  return {
    uid: "u",
    namespace: "ns",
    name: "p",
    sandbox: "osm-pod-2",
    podIPs: ["198.51.100.2", "2001:db8:1::2"],
    hostIP: "198.51.100.1",
    startTime: T,
    restartPolicy: "Always",
    initialized: true,
    initFailed: false,
    sandboxError: undefined,
    terminating: false,
    initContainers: [],
    containers: [],
    ...extra,
  };
}

describe("the pod phase", () => {
  const cases: [string, Partial<PodView>, string][] = [
    ["all containers running is Running", { containers: [c("a", running), c("b", running)] }, "Running"],
    [
      "an init container still running is Pending",
      { initialized: false, containers: [c("a", { waiting: { reason: "PodInitializing" } })] },
      "Pending",
    ],
    [
      "a failed init container under Never is Failed",
      { initialized: false, initFailed: true, restartPolicy: "Never" },
      "Failed",
    ],
    [
      "no sandbox yet is Pending",
      { sandbox: undefined, containers: [c("a", { waiting: { reason: "ContainerCreating" } })] },
      "Pending",
    ],
    [
      "a crash-looping container that ran before keeps the pod Running",
      { containers: [c("a", backoff, { lastState: failed, restartCount: 2 })] },
      "Running",
    ],
    [
      "all succeeded under Never is Succeeded",
      { restartPolicy: "Never", containers: [c("a", ok)] },
      "Succeeded",
    ],
    [
      "one failed under Never is Failed",
      { restartPolicy: "Never", containers: [c("a", ok), c("b", failed)] },
      "Failed",
    ],
  ];
  for (const [name, extra, phase] of cases) test(name, () => assert.equal(podPhase(view(extra)), phase));
});

describe("the written status", () => {
  test("a running two-container pod is Ready with pod IPs, conditions and container states", () => {
    const s = buildPodStatus(view({ containers: [c("a", running), c("b", running)] }), NOW);
    assert.equal(s.phase, "Running");
    assert.equal(s.podIP, "198.51.100.2");
    assert.deepEqual(s.podIPs, [{ ip: "198.51.100.2" }, { ip: "2001:db8:1::2" }]);
    const cond = Object.fromEntries((s.conditions ?? []).map((x) => [x.type, x.status]));
    assert.deepEqual(cond, {
      PodReadyToStartContainers: "True",
      Initialized: "True",
      Ready: "True",
      ContainersReady: "True",
      PodScheduled: "True",
    });
    assert.deepEqual(
      s.containerStatuses?.map((x) => [x.name, x.ready, x.started, x.state?.running !== undefined]),
      [
        ["a", true, true, true],
        ["b", true, true, true],
      ],
    );
    assert.equal(s.initContainerStatuses, undefined);
  });

  test("a failed init container reads as terminated Error (the printer's Init:Error) and names the incomplete one", () => {
    const s = buildPodStatus(
      view({
        initialized: false,
        initFailed: true,
        restartPolicy: "Never",
        initContainers: [c("init", failed)],
        containers: [c("a", { waiting: { reason: "PodInitializing" } })],
      }),
      NOW,
    );
    assert.equal(s.phase, "Failed");
    assert.deepEqual(s.initContainerStatuses?.[0]?.state?.terminated?.exitCode, 3);
    assert.equal(s.initContainerStatuses?.[0]?.state?.terminated?.reason, "Error");
    const init = s.conditions?.find((x) => x.type === "Initialized");
    assert.equal(init?.status, "False");
    assert.equal(init?.message, "containers with incomplete status: [init]");
  });

  test("a running container still in its startupProbe is neither started nor ready", () => {
    const s = buildPodStatus(
      view({ containers: [c("a", running, { startupPassed: false, ready: false })] }),
      NOW,
    );
    assert.deepEqual(
      s.containerStatuses?.map((x) => [x.started, x.ready]),
      [[false, false]],
    );
    assert.equal(s.conditions?.find((x) => x.type === "Ready")?.status, "False");
  });

  test("transition times of unchanged conditions are kept", () => {
    const first = buildPodStatus(view({ containers: [c("a", running)] }), NOW);
    const old = new Date("2020-01-01T00:00:00Z");
    for (const x of first.conditions ?? []) x.lastTransitionTime = old;
    const second = buildPodStatus(view({ containers: [c("a", running)] }), LATER, first);
    assert.ok(second.conditions?.every((x) => x.lastTransitionTime === old));
    const notReady = buildPodStatus(view({ containers: [c("a", running, { ready: false })] }), LATER, first);
    assert.equal(notReady.conditions?.find((x) => x.type === "Ready")?.lastTransitionTime, LATER);
  });
});

describe("resuming after an agent restart", () => {
  test("restart counts continue (+1 for containers that ran) and a finished init phase is kept", () => {
    const r = resumeStateOf({
      status: {
        conditions: [{ type: "Initialized", status: "True" }],
        initContainerStatuses: [
          {
            name: "init",
            restartCount: 1,
            ready: false,
            image: "",
            imageID: "",
            state: { terminated: { exitCode: 0 } },
          },
        ],
        containerStatuses: [
          { name: "a", restartCount: 2, ready: true, image: "", imageID: "", state: { running: {} } },
          {
            name: "b",
            restartCount: 0,
            ready: false,
            image: "",
            imageID: "",
            state: { waiting: { reason: "ContainerCreating" } },
          },
        ],
      },
    });
    assert.equal(r?.initialized, true);
    assert.deepEqual(
      [...(r?.restartCounts ?? [])],
      [
        ["init:init", 1],
        ["a", 3],
        ["b", 0],
      ],
    );
  });
  test("a pod the agent never reported has nothing to resume", () => {
    assert.equal(resumeStateOf({ status: { phase: "Pending" } }), undefined);
  });
});
