/**
 * The HTTP match evaluator: does a request satisfy an HTTPRouteGroup match? Pure. Semantics are those of the
 * Envoy routes OSM builds from a match (`pkg/envoy/generator/rds/route_config.go: buildRoute`,
 * `getHeadersForRoute`, `sanitizeHTTPMethods`; `pkg/catalog/egress.go: getHTTPRouteMatchesFromHTTPRouteGroup`):
 *
 * - `pathRegex` is RE2 and must match the whole path, query string excluded; none is `.*`.
 * - `methods`: the request's method is one of them; `*` among them, or none, is any method.
 * - `headers`: every listed header is present and its whole value matches the RE2 expression; names are
 *   case-insensitive, `host` is the request's authority (the Host header).
 * - A request is allowed by a list of matches when any one of them holds.
 */
import { RE2JS } from "re2js";

/** What a match looks at in a request. */
export interface HttpRequestFacts {
  readonly method: string;
  /** The request target's path (a query string, if present, is ignored). */
  readonly path: string;
  /** Header values by lower-case name (several values of one name joined with `, `). */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
}

/** One match, compiled once for many requests. */
export interface CompiledHttpMatch {
  readonly name: string;
  readonly path: RE2JS;
  /** undefined: any method. */
  readonly methods: ReadonlySet<string> | undefined;
  readonly headers: readonly (readonly [name: string, value: RE2JS])[];
}

/** An HTTPRouteGroup match as validated (src/smi/http-route-group.ts), or as a sidecar receives it. */
export interface HttpMatchSpec {
  readonly name: string;
  readonly pathRegex?: string | undefined;
  readonly methods?: readonly string[] | undefined;
  readonly headers?: readonly Readonly<Record<string, string>>[] | undefined;
}

/** Compiles validated matches (their expressions compile: the validator checked them). */
export function compileHttpMatches(matches: readonly HttpMatchSpec[]): CompiledHttpMatch[] {
  return matches.map((match) => {
    const methods = match.methods ?? [];
    return {
      name: match.name,
      path: RE2JS.compile(match.pathRegex === undefined || match.pathRegex === "" ? ".*" : match.pathRegex),
      methods: methods.length === 0 || methods.includes("*") ? undefined : new Set(methods),
      headers: (match.headers ?? []).flatMap((condition) =>
        Object.entries(condition).map(([name, value]) => [name.toLowerCase(), RE2JS.compile(value)] as const),
      ),
    };
  });
}

function pathOf(target: string): string {
  const query = target.indexOf("?");
  return query < 0 ? target : target.slice(0, query);
}

function headerValue(facts: HttpRequestFacts, name: string): string | undefined {
  const value = facts.headers[name];
  if (value === undefined) return undefined;
  return typeof value === "string" ? value : value.join(", ");
}

/** Whether one compiled match holds for the request. */
export function httpMatchHolds(match: CompiledHttpMatch, request: HttpRequestFacts): boolean {
  if (match.methods !== undefined && !match.methods.has(request.method)) return false;
  if (!match.path.matches(pathOf(request.path))) return false;
  for (const [name, pattern] of match.headers) {
    const value = headerValue(request, name);
    if (value === undefined || !pattern.matches(value)) return false;
  }
  return true;
}

/** The first match that holds for the request, or undefined. */
export function findHttpMatch(
  matches: readonly CompiledHttpMatch[],
  request: HttpRequestFacts,
): CompiledHttpMatch | undefined {
  return matches.find((match) => httpMatchHolds(match, request));
}
