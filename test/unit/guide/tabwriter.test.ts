import assert from "node:assert/strict";
import { test } from "node:test";
import { formatTabwriter } from "../../../src/guide/tabwriter.ts";

test("the namespace table is aligned as Go's tabwriter with OSM's settings, trailing padding included", () => {
  const text = formatTabwriter([
    ["NAMESPACE", "MESH", "SIDECAR-INJECTION"],
    ["curl", "osm", "enabled"],
    ["bookstore-long-name", "osm", "-"],
  ]);
  assert.equal(
    text,
    "NAMESPACE             MESH   SIDECAR-INJECTION   \n" +
      "curl                  osm    enabled             \n" +
      "bookstore-long-name   osm    -                   \n",
  );
});

test("a column narrower than the minimum width is padded to six characters", () => {
  assert.equal(formatTabwriter([["a", "b"]]), "a     b     \n");
});
