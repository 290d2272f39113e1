/**
 * The seam between an API server and the node agent, as kube-apiserver ↔ kubelet: the embedded API server
 * serves `pods/exec`, `pods/attach`, `pods/log` and `pods/portforward` by calling these, and so does the kubelet server that the
 * real kube-apiserver calls; the node agent implements them. Neither side imports the other's internals.
 */
import type { Socket } from "node:net";
import type { Readable, Writable } from "node:stream";

export interface ExecRequest {
  readonly namespace: string;
  readonly pod: string;
  /** Container name; undefined means the pod's first container (kubectl's default). */
  readonly container: string | undefined;
  readonly command: readonly string[];
  /** Run the command on a pseudo-terminal (stdout and stderr merged, as on a cluster). */
  readonly tty: boolean;
}

export interface AttachRequest {
  readonly namespace: string;
  readonly pod: string;
  readonly container: string | undefined;
}

/** A terminal size as the remote-command protocol's resize channel carries it (columns, rows). */
export interface TerminalSize {
  readonly width: number;
  readonly height: number;
}

/** The client's terminal sizes: a listener gets the latest size at once (if any), then every change. */
export interface TerminalResizes {
  onResize(listener: (size: TerminalSize) => void): () => void;
}

export interface ExecStreams {
  /** Present when the client asked for stdin. End of stream = stdin closed. */
  readonly stdin: Readable | null;
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** Present for TTY sessions. */
  readonly resize?: TerminalResizes | null;
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
  /** Only lines written in the last N seconds. */
  readonly sinceSeconds?: number | undefined;
  /** Stop after this many bytes. */
  readonly limitBytes?: number | undefined;
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
  /**
   * Joins the container's main process (its stdin when the spec has `stdin: true`, its terminal when `tty:
   * true`): output from now on; resolves when the process ends or the client leaves (`signal`).
   */
  attach(request: AttachRequest, streams: ExecStreams, signal: AbortSignal): Promise<ExecResult>;
  logs(request: LogRequest, out: Writable, signal: AbortSignal): Promise<void>;
  /** Proxies one HTTP request to `podIP:port` inside the pod (for `pods/proxy`); resolves with the response. */
  proxyHttp(
    request: { namespace: string; pod: string; port: number; path: string; method: string },
    signal: AbortSignal,
  ): Promise<{ status: number; headers: Record<string, string>; body: Buffer }>;
  /**
   * A TCP connection to the pod's port, as port-forward needs it (the node agent: localhost inside the pod's
   * network namespace), half-open allowed so each direction's end passes on alone; rejects with the reason
   * when the pod or the port cannot be reached.
   */
  connectPort(request: { namespace: string; pod: string; port: number }): Promise<Socket>;
}
