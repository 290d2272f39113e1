/**
 * Label and field selectors as the API server parses them: `k=v`, `k==v`, `k!=v`, `k in (a,b)`,
 * `k notin (a,b)`, `k`, `!k` for labels; `path=v`, `path==v`, `path!=v` for fields (any dotted path, e.g.
 * `metadata.name`, `spec.nodeName`, `status.phase`, `involvedObject.name`).
 */
import { badRequest } from "./status.ts";

export type Requirement =
  | { op: "eq" | "neq"; key: string; value: string }
  | { op: "in" | "notin"; key: string; values: string[] }
  | { op: "exists" | "notexists"; key: string };

/** Splits on commas that are not inside parentheses. */
function splitTerms(selector: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < selector.length; i++) {
    const c = selector[i];
    if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === "," && depth === 0) {
      terms.push(selector.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(selector.slice(start));
  return terms.map((t) => t.trim()).filter((t) => t !== "");
}

export function parseLabelSelector(selector: string | undefined | null): Requirement[] {
  if (!selector) return [];
  return splitTerms(selector).map((term) => {
    let m = /^(\S+?)\s*(==|!=|=)\s*(\S*)$/.exec(term);
    if (m) return { op: m[2] === "!=" ? "neq" : "eq", key: m[1] ?? "", value: m[3] ?? "" };
    m = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
    if (m) {
      const values = (m[3] ?? "").split(",").map((v) => v.trim());
      return { op: m[2] === "in" ? "in" : "notin", key: m[1] ?? "", values };
    }
    m = /^!\s*(\S+)$/.exec(term);
    if (m) return { op: "notexists", key: m[1] ?? "" };
    if (/^[A-Za-z0-9._/-]+$/.test(term)) return { op: "exists", key: term };
    throw badRequest(`unable to parse requirement: found '${term}', expected: identifier`);
  });
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
    }
    return false;
  });
}

export function parseFieldSelector(selector: string | undefined | null): Requirement[] {
  if (!selector) return [];
  return splitTerms(selector).map((term) => {
    const m = /^([^=!]+?)\s*(==|!=|=)\s*(.*)$/.exec(term);
    if (!m) throw badRequest(`invalid selector: '${term}'; can't understand '${term}'`);
    return { op: m[2] === "!=" ? "neq" : "eq", key: m[1] ?? "", value: m[3] ?? "" };
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
