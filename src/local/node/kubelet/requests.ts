/**
 * The kubelet API's request shapes, as kube-apiserver sends them (pure): `/exec`, `/attach` and
 * `/containerLogs/{namespace}/{pod}/{container}`, `/portForward/{namespace}/{pod}` (the paths kube-apiserver uses; not the `{uid}` forms) with the kubelet's query names (`input`, `output`,
 * `error`, `tty`, `command`; `follow`, `previous`, `timestamps`, `tailLines`, `sinceSeconds`, `sinceTime`,
 * `limitBytes`, `stream`), and `/healthz`. A bad value is refused naming the parameter and the value.
 */
export type KubeletRequest =
  | { readonly kind: "healthz" }
  | { readonly kind: "portForward"; readonly namespace: string; readonly pod: string }
  | {
      readonly kind: "exec" | "attach";
      readonly namespace: string;
      readonly pod: string;
      readonly container: string;
      readonly command: readonly string[];
      readonly stdin: boolean;
      readonly stdout: boolean;
      readonly stderr: boolean;
      readonly tty: boolean;
    }
  | {
      readonly kind: "logs";
      readonly namespace: string;
      readonly pod: string;
      readonly container: string;
      readonly follow: boolean;
      readonly previous: boolean;
      readonly timestamps: boolean;
      readonly tailLines: number | undefined;
      readonly sinceSeconds: number | undefined;
      readonly limitBytes: number | undefined;
    };

export class KubeletRequestError extends Error {
  readonly status: 400 | 404;
  constructor(status: 400 | 404, message: string) {
    super(message);
    this.name = "KubeletRequestError";
    this.status = status;
  }
}

/** A boolean as the kubelet reads one (`1`, `true`; Go's strconv.ParseBool). */
function flag(q: URLSearchParams, name: string): boolean {
  const v = q.get(name);
  if (v === null || v === "") return false;
  if (["1", "t", "T", "true", "TRUE", "True"].includes(v)) return true;
  if (["0", "f", "F", "false", "FALSE", "False"].includes(v)) return false;
  throw new KubeletRequestError(400, `query parameter ${name}: invalid boolean ${JSON.stringify(v)}`);
}

function integer(q: URLSearchParams, name: string, min: number): number | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isSafeInteger(n) || n < min)
    throw new KubeletRequestError(
      400,
      `query parameter ${name}: ${JSON.stringify(v)} is not an integer ${min === 0 ? ">= 0" : `>= ${min}`}`,
    );
  return n;
}

/** `sinceSeconds`, or `sinceTime` (RFC 3339) turned into seconds before `now`; at least 1 when given. */
function since(q: URLSearchParams, now: number): number | undefined {
  const seconds = integer(q, "sinceSeconds", 1);
  if (seconds !== undefined) return seconds;
  const time = q.get("sinceTime");
  if (time === null) return undefined;
  const at = Date.parse(time);
  if (!/^\d{4}-\d\d-\d\dT/.test(time) || Number.isNaN(at))
    throw new KubeletRequestError(400, `query parameter sinceTime: ${JSON.stringify(time)} is not RFC 3339`);
  return Math.max(1, Math.ceil((now - at) / 1000));
}

const SEGMENT = /^[^/]+$/;

/** Parses a kubelet API URL; null when the path is not one this server serves. */
export function parseKubeletRequest(url: URL, now = Date.now()): KubeletRequest | null {
  const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  const [root, ...rest] = parts;
  if (root === "healthz" && rest.length === 0) return { kind: "healthz" };
  if (root === "portForward" && rest.length === 2 && rest.every((p) => SEGMENT.test(p)))
    return { kind: "portForward", namespace: rest[0] ?? "", pod: rest[1] ?? "" };
  const kind =
    root === "exec" ? "exec" : root === "attach" ? "attach" : root === "containerLogs" ? "logs" : null;
  if (!kind || rest.length !== 3 || !rest.every((p) => SEGMENT.test(p))) return null;
  const [namespace = "", pod = "", container = ""] = rest;
  const q = url.searchParams;
  if (kind === "logs") {
    const stream = q.get("stream");
    if (stream !== null && stream !== "All")
      throw new KubeletRequestError(
        400,
        `query parameter stream: ${JSON.stringify(stream)} is not supported by this node (only All)`,
      );
    return {
      kind,
      namespace,
      pod,
      container,
      follow: flag(q, "follow"),
      previous: flag(q, "previous"),
      timestamps: flag(q, "timestamps"),
      tailLines: integer(q, "tailLines", 0),
      sinceSeconds: since(q, now),
      limitBytes: integer(q, "limitBytes", 1),
    };
  }
  const command = kind === "exec" ? q.getAll("command") : [];
  if (kind === "exec" && command.length === 0)
    throw new KubeletRequestError(400, "you must specify at least 1 command");
  const request: KubeletRequest = {
    kind,
    namespace,
    pod,
    container,
    command,
    stdin: flag(q, "input"),
    stdout: flag(q, "output"),
    stderr: flag(q, "error"),
    tty: flag(q, "tty"),
  };
  if (!request.stdin && !request.stdout && !request.stderr)
    throw new KubeletRequestError(400, "you must specify at least 1 of stdin, stdout, stderr");
  return request;
}
