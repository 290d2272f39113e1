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

/** Decodes a request body by its content type: JSON (and the patch types), YAML or Kubernetes protobuf. */
export function decodeBody(body: Buffer, contentType: string | undefined): unknown {
  const ct = (contentType ?? "application/json").split(";")[0]?.trim() ?? "";
  if (body.length === 0) return undefined;
  if (ct === PROTOBUF_CONTENT_TYPE) return decodeProtobufObject(body);
  try {
    if (ct === "application/yaml" || ct === "application/apply-patch+yaml")
      return parseYaml(body.toString("utf8"));
    return JSON.parse(body.toString("utf8"));
  } catch (error) {
    throw badRequest(`error decoding request body: ${(error as Error).message}`);
  }
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
