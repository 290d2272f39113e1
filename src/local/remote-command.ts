/**
 * The WebSocket remote-command protocol of `exec` and `attach` (`v5.channel.k8s.io`, `v4.channel.k8s.io`), as
 * kube-apiserver and the kubelet speak it: binary frames whose first byte is the channel (0 stdin, 1 stdout,
 * 2 stderr, 3 error Status, 4 resize `{"Width","Height"}`, 255 close: v5 only, `[255, 0]` = stdin ended), ending
 * with a channel-3 Status and a close frame, so kubectl exits with the command's exit code. Shared by the
 * embedded API server (`apiserver/pod-connect.ts`) and the kubelet server (`node/kubelet/`).
 */
import { PassThrough, Writable } from "node:stream";
import type { Logger } from "pino";
import { type WebSocket, WebSocketServer } from "ws";
import {
  type ExecResult,
  type ExecStreams,
  NodeConnectorError,
  type TerminalResizes,
  type TerminalSize,
} from "./node-connector.ts";

export const REMOTE_COMMAND_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"] as const;

const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
const RESIZE = 4;
const CLOSE = 255;

/** A WebSocket server for remote commands (no own listener): picks v5, else v4, else refuses the protocol. */
export function createRemoteCommandWebSocketServer(): WebSocketServer {
  return new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => REMOTE_COMMAND_PROTOCOLS.find((p) => protocols.has(p)) ?? false,
  });
}

/** The terminal sizes a client sent; a late listener gets the last one at once. */
export class TerminalSizeQueue implements TerminalResizes {
  #last: TerminalSize | undefined;
  readonly #listeners = new Set<(size: TerminalSize) => void>();

  push(size: TerminalSize): void {
    this.#last = size;
    for (const l of this.#listeners) l(size);
  }

  onResize(listener: (size: TerminalSize) => void): () => void {
    this.#listeners.add(listener);
    if (this.#last) listener(this.#last);
    return () => this.#listeners.delete(listener);
  }
}

/** Reads a resize message (`{"Width":80,"Height":24}`); undefined when it is not one. */
export function parseTerminalSize(data: Buffer): TerminalSize | undefined {
  try {
    const v = JSON.parse(data.toString("utf8")) as { Width?: unknown; Height?: unknown };
    const ok = (n: unknown): n is number => Number.isInteger(n) && (n as number) > 0 && (n as number) < 65536;
    return ok(v.Width) && ok(v.Height) ? { width: v.Width, height: v.Height } : undefined;
  } catch {
    return undefined;
  }
}

/** A Status as the error channel carries it (the kubelet's shape for a failure to run, or a non-zero exit). */
export function remoteCommandStatus(outcome: ExecResult | { error: unknown }, command: readonly string[]) {
  if ("error" in outcome) {
    const e = outcome.error;
    if (e instanceof NodeConnectorError) {
      const reason = { 400: "BadRequest", 404: "NotFound", 409: "Conflict", 500: "InternalError" }[e.status];
      return { metadata: {}, status: "Failure", message: e.message, reason, code: e.status };
    }
    const message = `Internal error occurred: ${(e as Error).message}`;
    return { metadata: {}, status: "Failure", message, reason: "InternalError", code: 500 };
  }
  if (outcome.exitCode === 0) return { metadata: {}, status: "Success" };
  return {
    metadata: {},
    status: "Failure",
    message: `command terminated with non-zero exit code: error executing command [${command.join(" ")}], exit code ${outcome.exitCode}`,
    reason: "NonZeroExitCode",
    details: { causes: [{ reason: "ExitCode", message: String(outcome.exitCode) }] },
  };
}

export interface RemoteCommandOptions {
  readonly stdin: boolean;
  readonly stdout: boolean;
  readonly stderr: boolean;
  readonly tty: boolean;
  /** For the non-zero exit message (exec); empty for attach. */
  readonly command: readonly string[];
}

/**
 * Serves one remote-command session on an upgraded WebSocket: feeds stdin and resizes to `run`, frames its
 * output, sends the final Status and closes. The client leaving aborts `run`'s signal.
 */
export async function serveRemoteCommand(
  ws: WebSocket,
  options: RemoteCommandOptions,
  run: (streams: ExecStreams, signal: AbortSignal) => Promise<ExecResult>,
  logger: Logger,
): Promise<void> {
  const v5 = ws.protocol === "v5.channel.k8s.io";
  const abort = new AbortController();
  const send = (channel: number, data: Buffer) => {
    if (ws.readyState === ws.OPEN) ws.send(Buffer.concat([Buffer.from([channel]), data]), { binary: true });
  };
  const channelWriter = (channel: number, wanted: boolean) =>
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        if (wanted) send(channel, Buffer.from(chunk));
        cb();
      },
    });
  const stdin = options.stdin ? new PassThrough() : null;
  const resize = options.tty ? new TerminalSizeQueue() : null;
  ws.on("message", (data: Buffer, isBinary) => {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer);
    if (!isBinary || buf.length === 0) return;
    const channel = buf[0];
    if (channel === STDIN && stdin && !stdin.writableEnded) stdin.write(buf.subarray(1));
    else if (channel === RESIZE && resize) {
      const size = parseTerminalSize(buf.subarray(1));
      if (size) resize.push(size);
    } else if (channel === CLOSE && v5 && buf[1] === STDIN && stdin) stdin.end();
  });
  // Without a listener, a socket error (a client gone mid-frame) would be thrown and end the process.
  ws.on("error", (error) => {
    logger.debug({ err: error }, "remote-command WebSocket error");
    abort.abort();
  });
  ws.on("close", () => {
    abort.abort();
    stdin?.end();
  });
  let outcome: ExecResult | { error: unknown };
  try {
    outcome = await run(
      {
        stdin,
        stdout: channelWriter(STDOUT, options.stdout),
        // With a TTY the terminal merges both streams onto stdout, as on a cluster.
        stderr: channelWriter(options.tty ? STDOUT : STDERR, options.tty ? options.stdout : options.stderr),
        resize,
      },
      abort.signal,
    );
  } catch (error) {
    logger.debug({ err: error }, "remote command failed");
    outcome = { error };
  }
  send(ERROR, Buffer.from(JSON.stringify(remoteCommandStatus(outcome, options.command))));
  // A close frame, not a bare TCP end: kubectl reports 1006 and exits 1 otherwise.
  if (ws.readyState === ws.OPEN) ws.close(1000);
  setTimeout(() => ws.terminate(), 5000).unref();
}
