/**
 * `kubectl port-forward` on the embedded API server: kubectl's WebSocket tunnel (and, with
 * `KUBECTL_PORT_FORWARD_WEBSOCKETS=false`, a direct SPDY upgrade) served by the shared SPDY port-forward
 * module, the node being the local-process stand-in whose "pods" are this host's loopback ports. The pod's
 * port runs httpbin, so `/anything` echoes each body back.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { connect } from "node:net";
import { after, before, describe, test } from "node:test";
import { handleHttpbin } from "../../../src/local/node/httpbin.ts";
import { until } from "../../support/poll.ts";
import {
  distinctBody,
  echoAtOnce,
  expectForwardToDeadPort,
  expectSequentialThenConcurrent,
  freePorts,
  startForward,
} from "../../support/port-forward.ts";
import { kubectlEnv } from "../../support/run.ts";
import {
  kubeConfigFrom,
  kubectlFor,
  ok,
  type ServerProcess,
  startNodeStandIn,
  startServerProcess,
  tempDir,
} from "./helpers.ts";

const POD = `apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default}
spec:
  containers:
  - {name: httpbin, image: kennethreitz/httpbin}
`;

describe("kubectl port-forward (embedded API server)", { concurrency: false }, () => {
  const dir = tempDir("portfwd");
  let server: ServerProcess;
  let stopNode: () => void;
  let httpbin: Server;
  let podPort: number;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    server = await startServerProcess(`${dir.path}/state`);
    env = kubectlEnv(server.kubeconfig, dir.path);
    stopNode = await startNodeStandIn(kubeConfigFrom(server.kubeconfig), "default");
    ok(await kubectlFor(server.kubeconfig, dir.path)(["apply", "-f", "-"], POD));
    await until(
      "pod web Running",
      async () => {
        const got = await kubectlFor(
          server.kubeconfig,
          dir.path,
        )(["get", "pod", "web", "-o", "jsonpath={.status.phase}"]);
        return got.stdout === "Running" ? true : undefined;
      },
      20_000,
    );
    httpbin = createServer(handleHttpbin);
    await new Promise<void>((resolve) => httpbin.listen(0, "127.0.0.1", resolve));
    podPort = (httpbin.address() as { port: number }).port;
  });

  after(async () => {
    stopNode?.();
    await server?.stop();
    httpbin?.closeAllConnections();
    await new Promise((resolve) => httpbin?.close(resolve));
    dir.remove();
  });

  test("one connection after another, then 8 at once with a distinct 1 MB body each, byte for byte", async () => {
    const [local = 0] = await freePorts(1);
    const forward = await startForward(env, ["pod/web", `${local}:${podPort}`], [local]);
    try {
      await expectSequentialThenConcurrent(local, dir.path);
      assert.match(forward.output(), /Handling connection for/);
    } finally {
      await forward.stop();
    }
  });

  test("a direct SPDY upgrade (kubectl without the WebSocket tunnel) forwards too", async () => {
    const [local = 0] = await freePorts(1);
    const spdyEnv = { ...env, KUBECTL_PORT_FORWARD_WEBSOCKETS: "false" };
    const forward = await startForward(spdyEnv, ["pod/web", `${local}:${podPort}`], [local]);
    try {
      await echoAtOnce(local, dir.path, [distinctBody(300_000), distinctBody(10)]);
    } finally {
      await forward.stop();
    }
  });

  test("a port nothing listens on: kubectl prints the node's error and exits 1, as kubectl 1.32 does", async () => {
    const [local = 0, deadLocal = 0, deadPort = 0] = await freePorts(3);
    const forward = await startForward(
      env,
      ["pod/web", `${local}:${podPort}`, `${deadLocal}:${deadPort}`],
      [local, deadLocal],
    );
    try {
      await expectForwardToDeadPort(
        forward,
        deadLocal,
        deadPort,
        `error forwarding port ${deadPort} to pod default/web: connect ECONNREFUSED 127.0.0.1:${deadPort}`,
      );
    } finally {
      await forward.stop();
    }
  });

  test("stopping the forward closes the connections it opened to the pod", async () => {
    const [local = 0] = await freePorts(1);
    const forward = await startForward(env, ["pod/web", `${local}:${podPort}`], [local]);
    const client = connect(local, "127.0.0.1");
    client.on("error", () => {});
    // Half a request: httpbin holds the connection open waiting for the rest.
    client.write("POST /anything HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    const open = () => new Promise<number>((resolve) => httpbin.getConnections((_e, n) => resolve(n)));
    await until("the pod side of the connection", async () => ((await open()) > 0 ? true : undefined));
    await forward.stop();
    await until("the pod side closed", async () => ((await open()) === 0 ? true : undefined));
    client.destroy();
  });
});
