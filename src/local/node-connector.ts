/**
 * The seam between the embedded API server and the node agent, as kube-apiserver ↔ kubelet: the API server
 * serves `pods/exec` and `pods/log` by calling these; the node agent implements them. Neither side imports
 * the other's internals.
 */
import type { Readable, Writable } from "node:stream";

export interface ExecRequest {
  readonly namespace: string;
  readonly pod: string;
  /** Container name; undefined means the pod's first container (kubectl's default). */
  readonly container: string | undefined;
  readonly command: readonly string[];
  readonly tty: boolean;
}

export interface ExecStreams {
  /** Present when the client asked for stdin. End of stream = stdin closed. */
  readonly stdin: Readable | null;
  readonly stdout: Writable;
  readonly stderr: Writable;
}

export interface ExecResult {
  /** The process's exit code (128+signal when killed by a signal). */
  readonly exitCode: number;
}

export interface LogRequest {
  readonly namespace: string;
  readonly pod: string;
  readonly container: string | undefined;
  readonly follow: boolean;
  readonly previous: boolean;
  readonly tailLines: number | undefined;
  readonly timestamps: boolean;
}

/** Errors thrown by a NodeConnector carry an HTTP-ish status so the API server can answer with a Status. */
export class NodeConnectorError extends Error {
  readonly status: 400 | 404 | 409 | 500;
  constructor(status: 400 | 404 | 409 | 500, message: string) {
    super(message);
    this.name = "NodeConnectorError";
    this.status = status;
  }
}

export interface NodeConnector {
  exec(request: ExecRequest, streams: ExecStreams, signal: AbortSignal): Promise<ExecResult>;
  logs(request: LogRequest, out: Writable, signal: AbortSignal): Promise<void>;
  /** Proxies one HTTP request to `podIP:port` inside the pod (for `pods/proxy`); resolves with the response. */
  proxyHttp(
    request: { namespace: string; pod: string; port: number; path: string; method: string },
    signal: AbortSignal,
  ): Promise<{ status: number; headers: Record<string, string>; body: Buffer }>;
}
