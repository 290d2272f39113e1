import assert from "node:assert/strict";
import { test } from "node:test";
import { tableBlock } from "../../../src/interception/live-update.ts";

test("tableBlock finds our table in a terse ruleset listing, between other tools' tables", () => {
  const ours = "table inet osm_proxy {\n\tset s {\n\t\ttype ipv4_addr\n\t}\n\tchain c {\n\t}\n}";
  const foreign = "table inet foreign {\n\tchain out {\n\t}\n}";
  const other = "table ip osm_proxy {\n}";
  assert.equal(tableBlock(`${ours}\n`, "osm_proxy"), ours);
  assert.equal(tableBlock(`${foreign}\n${other}\n${ours}\n${foreign}\n`, "osm_proxy"), ours);
  assert.equal(tableBlock(`${foreign}\n${other}\n`, "osm_proxy"), undefined);
  assert.equal(tableBlock("", "osm_proxy"), undefined);
});
