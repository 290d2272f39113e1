/** Small HTTP helpers: reading bodies, writing JSON and Status replies. */
import type { IncomingMessage, ServerResponse } from "node:http";
import { parse as parseYaml } from "yaml";
import { decodeProtobufObject, PROTOBUF_CONTENT_TYPE } from "./protobuf.ts";
import { ApiError, badRequest } from "./status.ts";

const MAX_BODY = 16 * 1024 * 1024;

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new ApiError(413, "RequestEntityTooLarge", "the request body is too large");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Object and array nesting a body may have: deeper is refused before anything recurses over it. */
export const MAX_BODY_DEPTH = 1000;

const BODY_TYPES = ["application/json", "application/yaml", PROTOBUF_CONTENT_TYPE];
const PATCH_TYPES = [
  "application/json-patch+json",
  "application/merge-patch+json",
  "application/strategic-merge-patch+json",
  "application/apply-patch+yaml",
];

/** How deep objects and arrays nest in `value`, counted without recursion; stops once past `limit`. */
function nestingDepth(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== "object") continue;
    if (depth + 1 > deepest) deepest = depth + 1;
    if (deepest > limit) return deepest;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return deepest;
}

/**
 * What a body is: an object (create, update), a patch, or optional options (DeleteOptions: an empty body
 * is not negotiated at all, as kube-apiserver's delete handler does).
 */
export type BodyKind = "object" | "patch" | "options";

/**
 * Decodes a request body by its content type, as kube-apiserver negotiates it: JSON, YAML or Kubernetes
 * protobuf for objects, the four patch types for patches; any other type is 415. An absent type is JSON.
 */
export function decodeBody(
  body: Buffer,
  contentType: string | undefined,
  kind: BodyKind = "object",
): unknown {
  if (kind === "options" && body.length === 0) return undefined;
  const patch = kind === "patch";
  const ct = (contentType ?? "").split(";")[0]?.trim().toLowerCase() || (patch ? "" : "application/json");
  const accepted = patch ? PATCH_TYPES : BODY_TYPES;
  if (!accepted.includes(ct))
    throw new ApiError(
      415,
      "UnsupportedMediaType",
      `the body of the request was in an unknown format - accepted media types include: ${accepted.join(", ")}`,
    );
  if (body.length === 0) return undefined;
  let decoded: unknown;
  if (ct === PROTOBUF_CONTENT_TYPE) decoded = decodeProtobufObject(body);
  else {
    try {
      decoded = ct.endsWith("yaml") ? parseYaml(body.toString("utf8")) : JSON.parse(body.toString("utf8"));
    } catch (error) {
      // The YAML parser recurses: a body nested past its stack is the same refusal as past MAX_BODY_DEPTH.
      const message = (error as Error).message;
      const why = /Maximum call stack/.test(message) ? `exceeded max depth of ${MAX_BODY_DEPTH}` : message;
      throw badRequest(`error decoding request body: ${why}`);
    }
  }
  if (nestingDepth(decoded, MAX_BODY_DEPTH) > MAX_BODY_DEPTH)
    throw badRequest(`error decoding request body: exceeded max depth of ${MAX_BODY_DEPTH}`);
  return decoded;
}

export function sendJson(
  res: ServerResponse,
  code: number,
  body: unknown,
  contentType = "application/json",
): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { "Content-Type": contentType, "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

export function sendError(res: ServerResponse, error: ApiError): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  sendJson(res, error.code, error.toStatus());
}

/** `Warning: 299 - "text"` headers, as kubectl prints them (`Warning: text`). */
export function warningHeaders(warnings: readonly string[]): string[] {
  return [...new Set(warnings)].map((w) => `299 - ${JSON.stringify(w)}`);
}
