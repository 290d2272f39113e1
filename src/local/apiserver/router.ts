/**
 * Parses a resource URL the way kube-apiserver's RequestInfoFactory does:
 * `/api/v1[/namespaces/{ns}]/{resource}[/{name}[/{subresource}[/{rest...}]]]` and the same under
 * `/apis/{group}/{version}`. `/api/v1/namespaces/{name}/status|finalize` address the namespace itself.
 */

export interface ResourceRequest {
  readonly group: string;
  readonly version: string;
  readonly namespace: string | undefined;
  readonly resource: string;
  readonly name: string | undefined;
  readonly subresource: string;
  /** What follows the subresource (pods/proxy paths). */
  readonly rest: string;
}

const NAMESPACE_SUBRESOURCES = new Set(["status", "finalize"]);

export function parseResourcePath(pathname: string): ResourceRequest | undefined {
  const parts = pathname
    .split("/")
    .filter((p) => p !== "")
    .map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (parts[0] === "api" && parts.length >= 3) {
    group = "";
    version = parts[1] ?? "";
    rest = parts.slice(2);
  } else if (parts[0] === "apis" && parts.length >= 4) {
    group = parts[1] ?? "";
    version = parts[2] ?? "";
    rest = parts.slice(3);
  } else {
    return undefined;
  }
  let namespace: string | undefined;
  if (rest[0] === "namespaces" && rest.length > 1) {
    if (rest.length > 2 && !NAMESPACE_SUBRESOURCES.has(rest[2] ?? "")) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
  }
  const [resource, name, subresource, ...tail] = rest;
  if (!resource) return undefined;
  return { group, version, namespace, resource, name, subresource: subresource ?? "", rest: tail.join("/") };
}
