import assert from "node:assert/strict";
import { test } from "node:test";
import { parseRunArgs } from "../../../src/sidecar/args.ts";

function options(args: string[]) {
  const parsed = parseRunArgs(args);
  assert.ok(!parsed.help);
  return parsed.options;
}

test("defaults are OSM's ports, the splice relay, info logs; both flag spellings are read", () => {
  const defaults = options([]);
  assert.equal(defaults.adminPort, 15000);
  assert.equal(defaults.outboundPort, 15001);
  assert.equal(defaults.inboundPort, 15003);
  assert.equal(defaults.relay, "splice");
  assert.equal(defaults.logLevel, "info");
  assert.equal(defaults.allowAnyUid, false);
  assert.equal(defaults.accessLog, true);
  assert.equal(options(["--access-log", "off"]).accessLog, false);
  const given = options(["--config", "/c.json", "--admin-port=16000", "--relay", "js", "--allow-any-uid"]);
  assert.equal(given.config, "/c.json");
  assert.equal(given.adminPort, 16000);
  assert.equal(given.relay, "js");
  assert.equal(given.allowAnyUid, true);
  assert.equal(options(["--controller", "http://c:1"]).controlPlane, "http://c:1");
  assert.deepEqual(parseRunArgs(["--config", "x", "--help"]), { help: true });
});

test("a bad flag or value is refused with the flag and the value named", () => {
  assert.throws(
    () => parseRunArgs(["--admin-port", "0"]),
    /--admin-port: must be an integer from 1 to 65535, got "0"/,
  );
  assert.throws(() => parseRunArgs(["--idle-timeout", "1.5"]), /--idle-timeout: must be an integer/);
  assert.throws(() => parseRunArgs(["--relay=fast"]), /--relay: must be one of splice, js, got "fast"/);
  assert.throws(() => parseRunArgs(["--log-level", "loud"]), /--log-level: must be one of/);
  assert.throws(() => parseRunArgs(["--access-log", "no"]), /--access-log: must be one of on, off, got "no"/);
  assert.throws(() => parseRunArgs(["--bogus"]), /unknown option "--bogus"/);
  assert.throws(() => parseRunArgs(["--node-flag=--jitless"]), /bin\/osm, the sidecar's launcher/);
  assert.throws(() => parseRunArgs(["--config"]), /--config: missing value <file>/);
  assert.throws(() => parseRunArgs(["--allow-any-uid=yes"]), /--allow-any-uid takes no value/);
  assert.throws(
    () => parseRunArgs(["--controller", "http://a", "--control-plane", "http://b"]),
    /give one of --control-plane or --controller/,
  );
});

test("the relay threads accept by default with the splice relay, Node with --relay js; --relay-threads is checked", () => {
  assert.equal(options([]).accept, "native");
  assert.equal(options([]).relayThreads, undefined);
  assert.equal(options(["--relay", "js"]).accept, "js");
  assert.equal(options(["--accept", "js"]).accept, "js");
  assert.equal(options(["--accept=js", "--relay", "splice"]).relay, "splice");
  assert.equal(options(["--relay-threads", "3"]).relayThreads, 3);
  assert.throws(
    () => parseRunArgs(["--accept", "native", "--relay", "js"]),
    /--accept native needs --relay splice/,
  );
  assert.throws(
    () => parseRunArgs(["--accept", "kernel"]),
    /--accept: must be one of native, js, got "kernel"/,
  );
  assert.throws(
    () => parseRunArgs(["--relay-threads", "0"]),
    /--relay-threads: must be an integer from 1 to 64/,
  );
});
