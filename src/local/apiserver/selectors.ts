/**
 * Label and field selectors with kube-apiserver's grammar and error messages (a bad selector is a 400 whose
 * message is the parser's). Labels: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`,
 * `k>1`, `k<1`, keys and values validated as label syntax. Fields: `path=v`, `path==v`, `path!=v` on any
 * dotted path (e.g. `metadata.name`, `spec.nodeName`, `status.phase`), `\,` `\=` `\\` escapes in values.
 */
import { invalidValue, labelKeyErrors, labelValueErrors } from "./label-syntax.ts";
import { badRequest } from "./status.ts";

export type Requirement =
  | { op: "eq" | "neq"; key: string; value: string }
  | { op: "in" | "notin"; key: string; values: string[] }
  | { op: "gt" | "lt"; key: string; value: number }
  | { op: "exists" | "notexists"; key: string };

type TokenKind = "id" | "end" | "," | "!" | "=" | "==" | "!=" | "in" | "notin" | "(" | ")" | ">" | "<";

interface Token {
  readonly kind: TokenKind;
  readonly text: string;
}

const OPERATOR_TOKENS = new Set(["!", "=", "==", "!=", "(", ")", ",", ">", "<"]);
const SPECIAL = new Set(["=", "!", "(", ")", ",", ">", "<"]);
const WHITESPACE = new Set([" ", "\t", "\r", "\n"]);

/** Tokens of a label selector: operators are the longest known run of special characters. */
function lex(selector: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  for (;;) {
    while (i < selector.length && WHITESPACE.has(selector[i] ?? "")) i++;
    if (i >= selector.length) {
      tokens.push({ kind: "end", text: "" });
      return tokens;
    }
    const start = i;
    if (SPECIAL.has(selector[i] ?? "")) {
      let end = i + 1;
      while (end < selector.length && OPERATOR_TOKENS.has(selector.slice(start, end + 1))) end++;
      i = end;
      const text = selector.slice(start, end);
      tokens.push({ kind: text as TokenKind, text });
      continue;
    }
    while (i < selector.length && !SPECIAL.has(selector[i] ?? "") && !WHITESPACE.has(selector[i] ?? "")) i++;
    const text = selector.slice(start, i);
    tokens.push({ kind: text === "in" || text === "notin" ? text : "id", text });
  }
}

class LabelParser {
  private position = 0;
  private readonly tokens: Token[];
  constructor(tokens: Token[]) {
    this.tokens = tokens;
  }

  /** The next token; `in`/`notin` are plain identifiers where values are expected. */
  private peek(asValue = true): Token {
    const t = this.tokens[this.position] ?? { kind: "end", text: "" };
    return asValue && (t.kind === "in" || t.kind === "notin") ? { kind: "id", text: t.text } : t;
  }

  private next(asValue = true): Token {
    const t = this.peek(asValue);
    if (this.position < this.tokens.length - 1) this.position++;
    return t;
  }

  parse(): Requirement[] {
    const requirements: Requirement[] = [];
    for (;;) {
      const t = this.peek();
      if (t.kind === "end") return requirements;
      if (t.kind !== "id" && t.kind !== "!")
        throw new Error(`found '${t.text}', expected: !, identifier, or 'end of string'`);
      try {
        requirements.push(this.requirement());
      } catch (error) {
        throw new Error(`unable to parse requirement: ${(error as Error).message}`);
      }
      const after = this.next();
      if (after.kind === "end") return requirements;
      if (after.kind !== ",") throw new Error(`found '${after.text}', expected: ',' or 'end of string'`);
      const following = this.peek();
      if (following.kind !== "id" && following.kind !== "!")
        throw new Error(`found '${following.text}', expected: identifier after ','`);
    }
  }

  private requirement(): Requirement {
    let t = this.next();
    const negated = t.kind === "!";
    if (negated) t = this.next();
    if (t.kind !== "id") throw new Error(`found '${t.text}', expected: identifier`);
    const key = t.text;
    const keyErrors = labelKeyErrors(key);
    if (keyErrors.length > 0) throw new Error(invalidValue("<nil>", key, keyErrors.join("; ")));
    const following = this.peek().kind;
    if (negated) return { op: "notexists", key };
    if (following === "end" || following === ",") return { op: "exists", key };
    const op = this.next(false);
    switch (op.kind) {
      case "in":
      case "notin":
        return { op: op.kind, key, values: checkValues(key, this.values()) };
      case "=":
      case "==":
      case "!=":
        return {
          op: op.kind === "!=" ? "neq" : "eq",
          key,
          value: checkValues(key, [this.exactValue()])[0] ?? "",
        };
      case ">":
      case "<": {
        const value = this.exactValue();
        if (!/^[+-]?\d+$/.test(value) || !Number.isSafeInteger(Number(value)))
          throw new Error(
            invalidValue("values[0]", value, "for 'Gt', 'Lt' operators, the value must be an integer"),
          );
        checkValues(key, [value]);
        return { op: op.kind === ">" ? "gt" : "lt", key, value: Number(value) };
      }
      default:
        throw new Error(`found '${op.text}', expected: in, notin, =, ==, !=, gt, lt`);
    }
  }

  private values(): string[] {
    const open = this.next();
    if (open.kind !== "(") throw new Error(`found '${open.text}' expected: '('`);
    const first = this.peek();
    if (first.kind === ")") {
      this.next();
      return [""];
    }
    if (first.kind !== "id" && first.kind !== ",")
      throw new Error(`found '${first.text}', expected: ',', ')' or identifier`);
    const values = new Set<string>();
    for (;;) {
      const t = this.next();
      if (t.kind === "id") {
        values.add(t.text);
        const after = this.peek();
        if (after.kind === ")") break;
        if (after.kind !== ",") throw new Error(`found '${after.text}', expected: ',' or ')'`);
      } else if (t.kind === ",") {
        const after = this.peek().kind;
        if (values.size === 0 || after === ")" || after === ",") values.add("");
        if (after === ")") break;
      } else {
        throw new Error(`found '${t.text}', expected: ',', or identifier`);
      }
    }
    this.next();
    return [...values].sort();
  }

  private exactValue(): string {
    const t = this.peek();
    if (t.kind === "end" || t.kind === ",") return "";
    this.next();
    if (t.kind === "id") return t.text;
    throw new Error(`found '${t.text}', expected: identifier`);
  }
}

function checkValues(key: string, values: string[]): string[] {
  const errors = values.flatMap((v, i) => {
    const problems = labelValueErrors(v);
    return problems.length > 0 ? [invalidValue(`values[${i}][${key}]`, v, problems.join("; "))] : [];
  });
  if (errors.length === 1) throw new Error(errors[0]);
  if (errors.length > 1) throw new Error(`[${errors.join(", ")}]`);
  return values;
}

export function parseLabelSelector(selector: string | undefined | null): Requirement[] {
  if (!selector) return [];
  try {
    return new LabelParser(lex(selector)).parse();
  } catch (error) {
    throw badRequest((error as Error).message);
  }
}

export function matchesRequirements(
  requirements: Requirement[],
  get: (key: string) => string | undefined,
): boolean {
  return requirements.every((r) => {
    const v = get(r.key);
    switch (r.op) {
      case "eq":
        return v === r.value;
      case "neq":
        return v !== r.value;
      case "in":
        return v !== undefined && r.values.includes(v);
      case "notin":
        return v === undefined || !r.values.includes(v);
      case "exists":
        return v !== undefined;
      case "notexists":
        return v === undefined;
      case "gt":
        return v !== undefined && /^[+-]?\d+$/.test(v) && Number(v) > r.value;
      case "lt":
        return v !== undefined && /^[+-]?\d+$/.test(v) && Number(v) < r.value;
    }
    return false;
  });
}

/** Splits on commas that are not escaped by a backslash (escapes kept for `unescapeFieldValue`). */
function splitFieldTerms(selector: string): string[] {
  const terms: string[] = [];
  let start = 0;
  let escaped = false;
  for (let i = 0; i < selector.length; i++) {
    const c = selector[i];
    if (escaped) escaped = false;
    else if (c === "\\") escaped = true;
    else if (c === ",") {
      terms.push(selector.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(selector.slice(start));
  return terms;
}

function unescapeFieldValue(value: string): string {
  let out = "";
  let escaped = false;
  for (const c of value) {
    if (escaped) {
      if (c !== "\\" && c !== "," && c !== "=")
        throw badRequest(`invalid field selector: invalid escape sequence: \\${c}`);
      out += c;
      escaped = false;
    } else if (c === "\\") escaped = true;
    else if (c === "," || c === "=")
      throw badRequest(`invalid field selector: unescaped character in value: ${c.codePointAt(0)}`);
    else out += c;
  }
  if (escaped) throw badRequest("invalid field selector: invalid escape sequence: \\");
  return out;
}

/** Field selector terms, checked in sorted order as kube-apiserver does (so its first error is the one reported). */
export function parseFieldSelector(selector: string | undefined | null): Requirement[] {
  if (!selector) return [];
  return splitFieldTerms(selector)
    .sort()
    .filter((term) => term !== "")
    .map((term) => {
      const m = /^(.*?)(!=|==|=)(.*)$/s.exec(term);
      if (!m) throw badRequest(`invalid selector: '${selector}'; can't understand '${term}'`);
      return { op: m[2] === "!=" ? "neq" : "eq", key: m[1] ?? "", value: unescapeFieldValue(m[3] ?? "") };
    });
}

/** A field's value as a string for field selectors (absent → ""), as Kubernetes compares them. */
export function fieldValue(object: unknown, path: string): string {
  let cur: unknown = object;
  for (const part of path.split(".")) {
    if (cur === null || typeof cur !== "object") return "";
    cur = (cur as Record<string, unknown>)[part];
  }
  if (cur === undefined || cur === null) return "";
  return typeof cur === "object" ? JSON.stringify(cur) : String(cur);
}

/** Label selector in object form (`matchLabels` + `matchExpressions`), as Deployments and webhooks use. */
export interface LabelSelectorObject {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

export function labelSelectorRequirements(selector: LabelSelectorObject | undefined): Requirement[] {
  if (!selector) return [];
  const out: Requirement[] = [];
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) out.push({ op: "eq", key, value });
  for (const e of selector.matchExpressions ?? []) {
    const op = e.operator;
    if (op === "In") out.push({ op: "in", key: e.key, values: e.values ?? [] });
    else if (op === "NotIn") out.push({ op: "notin", key: e.key, values: e.values ?? [] });
    else if (op === "Exists") out.push({ op: "exists", key: e.key });
    else if (op === "DoesNotExist") out.push({ op: "notexists", key: e.key });
    else throw badRequest(`${op} is not a valid label selector operator`);
  }
  return out;
}

export function matchesLabels(
  requirements: Requirement[],
  labels: Record<string, string> | undefined,
): boolean {
  return matchesRequirements(requirements, (k) => labels?.[k]);
}

/** `a=b,c=d` from `{a: b, c: d}`: how a Deployment selector appears in Scale.status.selector and wide output. */
export function formatLabels(labels: Record<string, string> | undefined): string {
  return Object.entries(labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}
