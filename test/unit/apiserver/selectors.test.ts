import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  matchesLabels,
  matchesRequirements,
  parseFieldSelector,
  parseLabelSelector,
} from "../../../src/local/apiserver/selectors.ts";

/**
 * [kind, selector, kube-apiserver's message or null when it accepts it]: the messages are what
 * k8s.io/apimachinery 0.36's ListOptions decoding answers for these selectors, so a 400 reads the same.
 */
const KUBE_ANSWERS: [string, string, string | null][] = [
  ["label", "!!x", "unable to parse requirement: found '!', expected: identifier"],
  ["field", "!!x", "invalid selector: '!!x'; can't understand '!!x'"],
  ["label", "a==b==c", "found '==', expected: ',' or 'end of string'"],
  ["field", "a==b==c", "invalid field selector: unescaped character in value: 61"],
  ["label", "a=b,", "found '', expected: identifier after ','"],
  ["field", "a=b,", null],
  ["label", "a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"],
  ["field", "a b", "invalid selector: 'a b'; can't understand 'a b'"],
  ["label", "x in (a", "unable to parse requirement: found '', expected: ',' or ')'"],
  ["field", "x in (a", "invalid selector: 'x in (a'; can't understand 'x in (a'"],
  ["label", ",", "found ',', expected: !, identifier, or 'end of string'"],
  ["field", ",", null],
  ["label", "a=b c", "found 'c', expected: ',' or 'end of string'"],
  ["field", "a=b c", null],
  ["label", "a in a", "unable to parse requirement: found 'a' expected: '('"],
  ["field", "a in a", "invalid selector: 'a in a'; can't understand 'a in a'"],
  [
    "label",
    "-a",
    "unable to parse requirement: <nil>: Invalid value: \"-a\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
  ],
  ["field", "-a", "invalid selector: '-a'; can't understand '-a'"],
  ["label", "a=b!", "found '!', expected: ',' or 'end of string'"],
  ["field", "a=b!", null],
  [
    "label",
    "a=-b",
    "unable to parse requirement: values[0][a]: Invalid value: \"-b\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
  ],
  ["field", "a=-b", null],
  [
    "label",
    "a/b/c",
    "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
  ],
  ["field", "a/b/c", "invalid selector: 'a/b/c'; can't understand 'a/b/c'"],
  ["label", "a!", "unable to parse requirement: found '!', expected: in, notin, =, ==, !=, gt, lt"],
  ["field", "a!", "invalid selector: 'a!'; can't understand 'a!'"],
  ["label", "a,,b", "found ',', expected: identifier after ','"],
  ["field", "a,,b", "invalid selector: 'a,,b'; can't understand 'a'"],
  ["label", "a=(b)", "unable to parse requirement: found '(', expected: identifier"],
  ["field", "a=(b)", null],
  ["label", "a in ()", null],
  ["field", "a in ()", "invalid selector: 'a in ()'; can't understand 'a in ()'"],
  ["label", "a notin (,a)", null],
  ["field", "a notin (,a)", "invalid selector: 'a notin (,a)'; can't understand 'a notin ('"],
  ["label", "x>1", null],
  ["field", "x>1", "invalid selector: 'x>1'; can't understand 'x>1'"],
  [
    "label",
    "x>a",
    "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer",
  ],
  ["field", "x>a", "invalid selector: 'x>a'; can't understand 'x>a'"],
  ["label", "!", "unable to parse requirement: found '', expected: identifier"],
  ["field", "!", "invalid selector: '!'; can't understand '!'"],
  ["label", "a==", null],
  ["field", "a==", null],
  ["label", "a=b=c", "found '=', expected: ',' or 'end of string'"],
  ["field", "a=b=c", "invalid field selector: unescaped character in value: 61"],
  ["label", "a!=", null],
  ["field", "a!=", null],
  ["label", "a  in  (b, c)", null],
  ["field", "a  in  (b, c)", "invalid selector: 'a  in  (b, c)'; can't understand ' c)'"],
];

describe("selector grammar as kube-apiserver's", () => {
  for (const [kind, selector, want] of KUBE_ANSWERS) {
    it(`${kind} selector ${JSON.stringify(selector)} → ${want === null ? "accepted" : "400"}`, () => {
      const parse = kind === "label" ? parseLabelSelector : parseFieldSelector;
      if (want === null) {
        parse(selector);
        return;
      }
      assert.throws(
        () => parse(selector),
        (e: Error & { code?: number }) => e.code === 400 && e.message === want,
      );
    });
  }
});

describe("selector matching", () => {
  const labels = { app: "web", tier: "1", version: "v2" };
  const match = (s: string) => matchesLabels(parseLabelSelector(s), labels);

  it("set-based, existence and numeric requirements", () => {
    assert.equal(match("app in (web, db),!missing,tier"), true);
    assert.equal(match("app notin (web)"), false);
    assert.equal(match("tier>0,tier<2"), true);
    assert.equal(match("version>1"), false, "a value that is not an integer never matches Gt");
    assert.equal(match("app==web,version!=v1"), true);
    assert.equal(match("x in (in, notin)"), false, "keywords are values inside parentheses");
  });

  it("field selector values unescape \\, \\= and \\\\", () => {
    const [r] = parseFieldSelector("metadata.name=a\\,b\\=c\\\\");
    assert.deepEqual(r, { op: "eq", key: "metadata.name", value: "a,b=c\\" });
    assert.equal(
      matchesRequirements(parseFieldSelector("status.phase!=Running,"), () => "Pending"),
      true,
    );
  });
});
