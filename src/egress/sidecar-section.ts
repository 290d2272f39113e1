/**
 * Checks the `egress` section of an untrusted sidecar config document (parsed JSON), by hand as the rest of
 * the document is (src/config/sidecar-api.ts: no schema library in the sidecar).
 */
import type { Checker } from "../config/sidecar-api.ts";
import { tryParseCidr } from "../net/index.ts";
import {
  EGRESS_PROTOCOLS,
  type EgressProtocol,
  type SidecarEgressPolicy,
  type SidecarEgressRule,
  type SidecarHttpMatch,
} from "./types.ts";

function strings(check: Checker, path: string, value: unknown): string[] {
  return check.list(path, value, (p, v) =>
    typeof v === "string" ? v : check.problem(p, v, "must be a string"),
  );
}

/** One HTTPRouteGroup match of the document (an Egress's, or a TrafficTarget's in `inboundAccess`). */
export function checkHttpMatch(check: Checker, path: string, value: unknown): SidecarHttpMatch | undefined {
  const record = check.object(path, value, ["routeGroup", "name", "pathRegex", "methods", "headers"]);
  if (record === undefined) return undefined;
  const { routeGroup, name, pathRegex } = record;
  if (typeof routeGroup !== "string")
    return check.problem(`${path}.routeGroup`, routeGroup, "must be a string");
  if (typeof name !== "string") return check.problem(`${path}.name`, name, "must be a string");
  if (pathRegex !== undefined && typeof pathRegex !== "string") {
    return check.problem(`${path}.pathRegex`, pathRegex, "must be a string");
  }
  const headers = check.list(`${path}.headers`, record["headers"], (p, v) => {
    const condition = check.object(p, v, Object.keys((v ?? {}) as object));
    if (condition === undefined) return undefined;
    return Object.values(condition).every((x) => typeof x === "string")
      ? (condition as Record<string, string>)
      : check.problem(p, v, "must map header names to strings");
  });
  return {
    routeGroup,
    name,
    ...(pathRegex === undefined ? {} : { pathRegex }),
    ...(record["methods"] === undefined
      ? {}
      : { methods: strings(check, `${path}.methods`, record["methods"]) }),
    ...(record["headers"] === undefined ? {} : { headers }),
  };
}

function rule(check: Checker, path: string, value: unknown): SidecarEgressRule | undefined {
  const record = check.object(path, value, [
    "egress",
    "hosts",
    "ipAddresses",
    "ports",
    "httpMatches",
    "missingRouteGroups",
  ]);
  if (record === undefined) return undefined;
  const egress = record["egress"];
  if (typeof egress !== "string" || egress === "")
    return check.problem(`${path}.egress`, egress, "must be <namespace>/<name>");
  const ipAddresses = check.list(`${path}.ipAddresses`, record["ipAddresses"], (p, v) => {
    const parsed = typeof v === "string" ? tryParseCidr(v) : undefined;
    return parsed?.ok ? parsed.cidr.toString() : check.problem(p, v, "must be a CIDR");
  });
  const ports = check.list(`${path}.ports`, record["ports"], (p, v) => {
    const port = check.object(p, v, ["number", "protocol"]);
    if (port === undefined) return undefined;
    const number = check.port(`${p}.number`, port["number"]);
    const protocol = port["protocol"];
    if (!EGRESS_PROTOCOLS.includes(protocol as EgressProtocol)) {
      return check.problem(`${p}.protocol`, protocol, `must be one of ${EGRESS_PROTOCOLS.join(", ")}`);
    }
    return number === undefined ? undefined : { number, protocol: protocol as EgressProtocol };
  });
  const httpMatches =
    record["httpMatches"] === undefined
      ? undefined
      : check.list(`${path}.httpMatches`, record["httpMatches"], (p, v) => checkHttpMatch(check, p, v));
  const missing = record["missingRouteGroups"];
  return {
    egress,
    hosts: strings(check, `${path}.hosts`, record["hosts"]).map((h) => h.toLowerCase()),
    ipAddresses,
    ports,
    ...(httpMatches === undefined ? {} : { httpMatches }),
    ...(missing === undefined
      ? {}
      : { missingRouteGroups: strings(check, `${path}.missingRouteGroups`, missing) }),
  };
}

/** The `egress` section, or undefined with the problems recorded in `check`. */
export function checkEgressSection(
  check: Checker,
  path: string,
  value: unknown,
): SidecarEgressPolicy | undefined {
  const record = check.object(path, value, ["serviceAccount", "rules"]);
  if (record === undefined) return undefined;
  const serviceAccount = record["serviceAccount"];
  if (typeof serviceAccount !== "string" || !serviceAccount.includes("/")) {
    return check.problem(`${path}.serviceAccount`, serviceAccount, "must be <namespace>/<name>");
  }
  return { serviceAccount, rules: check.list(`${path}.rules`, record["rules"], (p, v) => rule(check, p, v)) };
}
