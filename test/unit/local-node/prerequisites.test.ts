import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { CommandRunner } from "../../../src/local/node/command-runner.ts";
import { checkHostPrerequisites } from "../../../src/local/node/prerequisites.ts";

const allOk: CommandRunner = async () => ({ code: 0, stdout: "", stderr: "" });

describe("host prerequisites", () => {
  test("a non-root user is told to run as root", async () => {
    await assert.rejects(checkHostPrerequisites(allOk, 1000), {
      code: "OSM_ERR_NOT_ROOT",
      hint: "run with sudo",
    });
  });
  test("a missing ip command is reported with the package to install", async () => {
    const noIp: CommandRunner = async (argv) => {
      if (argv[0] === "ip") throw new Error("spawn ip ENOENT");
      return { code: 0, stdout: "", stderr: "" };
    };
    await assert.rejects(checkHostPrerequisites(noIp, 0), {
      code: "OSM_ERR_MISSING_TOOL",
      message: "`ip netns list` is not available: spawn ip ENOENT",
      hint: "install iproute2",
    });
  });
  test("an ip without netns support is reported", async () => {
    const noNetns: CommandRunner = async (argv) =>
      argv[1] === "netns"
        ? { code: 255, stdout: "", stderr: 'Object "netns" is unknown, try "ip help".' }
        : { code: 0, stdout: "", stderr: "" };
    await assert.rejects(checkHostPrerequisites(noNetns, 0), {
      code: "OSM_ERR_MISSING_TOOL",
      message: /`ip netns list` failed: Object "netns" is unknown/,
    });
  });
  test("root with every tool passes", async () => {
    await assert.doesNotReject(checkHostPrerequisites(allOk, 0));
  });
});
