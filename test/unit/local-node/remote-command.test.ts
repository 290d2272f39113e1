import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { NodeConnectorError } from "../../../src/local/node-connector.ts";
import {
  parseTerminalSize,
  remoteCommandStatus,
  TerminalSizeQueue,
} from "../../../src/local/remote-command.ts";

describe("the remote-command protocol's pure parts", () => {
  test("a resize message is read as kubectl sends it; anything else is ignored", () => {
    assert.deepEqual(parseTerminalSize(Buffer.from('{"Width":120,"Height":40}')), { width: 120, height: 40 });
    for (const bad of ['{"Width":0,"Height":40}', '{"Width":"80","Height":24}', "{", '{"Height":24}', "[]"])
      assert.equal(parseTerminalSize(Buffer.from(bad)), undefined, bad);
  });

  test("a listener that subscribes late gets the last size at once, then every change", () => {
    const q = new TerminalSizeQueue();
    q.push({ width: 80, height: 24 });
    q.push({ width: 100, height: 30 });
    const seen: string[] = [];
    const off = q.onResize((s) => seen.push(`${s.width}x${s.height}`));
    q.push({ width: 132, height: 43 });
    off();
    q.push({ width: 1, height: 1 });
    assert.deepEqual(seen, ["100x30", "132x43"]);
  });

  test("the final Status: Success, the kubelet's non-zero exit form, and node errors with their code", () => {
    assert.deepEqual(remoteCommandStatus({ exitCode: 0 }, ["true"]), { metadata: {}, status: "Success" });
    const failed = remoteCommandStatus({ exitCode: 3 }, ["sh", "-c", "exit 3"]);
    assert.equal(
      failed.message,
      "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3",
    );
    assert.deepEqual((failed as { details: unknown }).details, {
      causes: [{ reason: "ExitCode", message: "3" }],
    });
    const missing = remoteCommandStatus({ error: new NodeConnectorError(404, "pod x is not running") }, []);
    assert.deepEqual(missing, {
      metadata: {},
      status: "Failure",
      message: "pod x is not running",
      reason: "NotFound",
      code: 404,
    });
    assert.equal(remoteCommandStatus({ error: new Error("boom") }, []).code, 500);
  });
});
