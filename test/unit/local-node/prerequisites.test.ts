import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { CommandRunner } from "../../../src/edge/command-runner.ts";
import { checkHostPrerequisites } from "../../../src/local/node/prerequisites.ts";

const allOk: CommandRunner = { run: async () => ({ code: 0, stdout: "", stderr: "" }) };

describe("host prerequisites", () => {
  test("a non-root user is told to run as root", async () => {
    await assert.rejects(checkHostPrerequisites(allOk, 1000), {
      code: "OSM_ERR_NOT_ROOT",
      hint: "run with sudo",
    });
  });
  test("a missing ip command is reported with the package to install", async () => {
    const noIp: CommandRunner = {
      run: async (argv) =>
        argv[0] === "ip"
          ? { code: 127, stdout: "", stderr: "", error: "spawn ip ENOENT" }
          : { code: 0, stdout: "", stderr: "" },
    };
    await assert.rejects(checkHostPrerequisites(noIp, 0), {
      code: "OSM_ERR_MISSING_TOOL",
      message: "`ip netns list` is not available: spawn ip ENOENT",
      hint: "install iproute2",
    });
  });
  test("an ip without netns support is reported", async () => {
    const noNetns: CommandRunner = {
      run: async (argv) =>
        argv[1] === "netns"
          ? { code: 255, stdout: "", stderr: 'Object "netns" is unknown, try "ip help".' }
          : { code: 0, stdout: "", stderr: "" },
    };
    await assert.rejects(checkHostPrerequisites(noNetns, 0), {
      code: "OSM_ERR_MISSING_TOOL",
      message: /`ip netns list` failed: Object "netns" is unknown/,
    });
  });
  test("root with every tool passes", async () => {
    await assert.doesNotReject(checkHostPrerequisites(allOk, 0));
  });
});
