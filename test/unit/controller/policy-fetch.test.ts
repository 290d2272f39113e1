import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { fetchPolicyText } from "../../../src/controller/policy-fetch.ts";

const TEXT = '{"format":"osm-ts/interception-policy/v1"}';
const HASH = createHash("sha256").update(TEXT).digest("hex");
let server: Server;
let url: string;
let asked = 0;

before(async () => {
  // 404 twice (the controller has not seen the pod yet), then the text; another hash gets a wrong text.
  server = createServer((req, res) => {
    asked += 1;
    if (req.url === `/v1/interception-policies/${HASH}`) {
      if (asked <= 2) res.writeHead(404).end('{"error":"not yet"}');
      else res.end(TEXT);
    } else if (req.url?.startsWith("/v1/interception-policies/0")) res.end("something else");
    else res.writeHead(404).end('{"error":"unknown"}');
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

test("the text is fetched by its hash, retrying while the controller does not know it yet", async () => {
  assert.equal(await fetchPolicyText(url, HASH, 10_000), TEXT);
  assert.equal(asked, 3);
});

test("a text whose sha256 is not the recorded hash is refused (fail closed)", async () => {
  await assert.rejects(
    fetchPolicyText(url, "0".repeat(64), 10_000),
    /answered a policy whose sha256 is [0-9a-f]{64}, not 0{64}/,
  );
});

test("a hash nobody serves fails after the timeout, naming the URL and the last answer", async () => {
  await assert.rejects(
    fetchPolicyText(url, "1".repeat(64), 1200),
    /could not fetch interception policy 1{64} from http:\/\/127\.0\.0\.1:\d+\/v1\/interception-policies\/1{64} within 1\.2s: HTTP 404: \{"error":"unknown"\}/,
  );
});
