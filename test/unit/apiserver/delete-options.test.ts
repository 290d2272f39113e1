import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseDeleteOptions } from "../../../src/local/apiserver/delete-options.ts";
import { ApiError } from "../../../src/local/apiserver/status.ts";

const query = (q = "") => new URLSearchParams(q);

function refusal(fn: () => unknown): { code: number; message: string } {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ApiError, String(error));
    return { code: error.code, message: error.message };
  }
  assert.fail("expected a refusal");
}

describe("DeleteOptions of a DELETE", () => {
  it("reads the query when the body is empty", () => {
    assert.deepEqual(parseDeleteOptions(undefined, query("gracePeriodSeconds=0&propagationPolicy=Orphan")), {
      gracePeriodSeconds: 0,
      propagationPolicy: "Orphan",
      preconditions: undefined,
      dryRun: false,
    });
  });

  it("reads only the body when there is one: its gracePeriodSeconds wins over the query's", () => {
    const o = parseDeleteOptions({ gracePeriodSeconds: 30 }, query("gracePeriodSeconds=0&dryRun=All"));
    assert.equal(o.gracePeriodSeconds, 30);
    assert.equal(o.dryRun, false);
    // A bad query is not read at all when a body gives the options, as kube-apiserver.
    assert.equal(parseDeleteOptions({}, query("gracePeriodSeconds=x")).gracePeriodSeconds, undefined);
  });

  it("accepts any apiVersion of kind DeleteOptions, null and unknown fields", () => {
    const o = { kind: "DeleteOptions", apiVersion: "apps/v1", dryRun: ["All"], foo: 1 };
    assert.equal(parseDeleteOptions(o, query()).dryRun, true);
    assert.equal(parseDeleteOptions(null, query()).gracePeriodSeconds, undefined);
  });

  it("refuses a body that is not DeleteOptions with 400 and the decoder's message", () => {
    assert.deepEqual(
      refusal(() => parseDeleteOptions({ apiVersion: "v1", kind: "Pod" }, query())),
      {
        code: 400,
        message: 'no kind "Pod" is registered for version "v1" in scheme "pkg/runtime/scheme.go:111"',
      },
    );
    assert.deepEqual(
      refusal(() => parseDeleteOptions({ apiVersion: "meta.k8s.io/v1", kind: "ListOptions" }, query())),
      { code: 400, message: "converting (v1.ListOptions) to (v1.DeleteOptions): unknown conversion" },
    );
    assert.match(
      refusal(() => parseDeleteOptions("hello", query())).message,
      /^couldn't get version\/kind; json parse error: json: cannot unmarshal string into Go value of type struct/,
    );
    assert.match(
      refusal(() => parseDeleteOptions([1], query())).message,
      /cannot unmarshal array into Go value/,
    );
  });

  it("refuses fields of the wrong type with 400", () => {
    assert.deepEqual(
      refusal(() => parseDeleteOptions({ gracePeriodSeconds: "x" }, query())),
      {
        code: 400,
        message:
          "json: cannot unmarshal string into Go struct field DeleteOptions.gracePeriodSeconds of type int64",
      },
    );
    assert.deepEqual(
      refusal(() => parseDeleteOptions({ gracePeriodSeconds: 1.5 }, query())),
      {
        code: 400,
        message:
          "json: cannot unmarshal number 1.5 into Go struct field DeleteOptions.gracePeriodSeconds of type int64",
      },
    );
    assert.equal(
      refusal(() => parseDeleteOptions({ preconditions: "x" }, query())).message,
      "json: cannot unmarshal string into Go struct field DeleteOptions.preconditions of type v1.Preconditions",
    );
    assert.equal(
      refusal(() => parseDeleteOptions(undefined, query("gracePeriodSeconds=x"))).message,
      'strconv.ParseInt: parsing "x": invalid syntax',
    );
  });

  it("refuses invalid options with 422 DeleteOptions", () => {
    assert.deepEqual(
      refusal(() => parseDeleteOptions({ propagationPolicy: "Bogus" }, query())),
      {
        code: 422,
        message:
          'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "Bogus": supported values: "Foreground", "Background", "Orphan", "nil"',
      },
    );
    assert.equal(refusal(() => parseDeleteOptions(undefined, query("dryRun=x"))).code, 422);
    assert.equal(
      refusal(() => parseDeleteOptions({ orphanDependents: true, propagationPolicy: "Orphan" }, query()))
        .code,
      422,
    );
  });
});
