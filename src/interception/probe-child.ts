/**
 * Post-apply probe, run inside the pod's network namespace as a separate process:
 * `node probe-child.ts HOST PORT LISTEN_PORT`. It listens on LISTEN_PORT (the outbound listener's port),
 * connects to HOST:PORT as an ordinary process and prints `redirected` when the connection reached its own
 * listener. When the port is taken (a sidecar already runs) it reports `connected` if the connection is
 * accepted. Exit 0 on success, 1 otherwise; bounded by a 3 s timeout.
 */
import { randomBytes } from "node:crypto";
import net from "node:net";

const [host, portText, listenText] = process.argv.slice(2);
const token = randomBytes(8).toString("hex");
const finish = (code: number, message: string) => {
  process.stdout.write(`${message}\n`);
  process.exit(code);
};
setTimeout(() => finish(1, `timeout: no answer from ${host}:${portText} within 3 s`), 3000).unref();

function connect(listening: boolean): void {
  const socket = net.connect({ host: host!, port: Number(portText) });
  let data = "";
  socket.on("connect", () => {
    if (!listening) finish(0, "connected");
  });
  socket.on("data", (b: Buffer) => {
    data += b.toString();
  });
  socket.on("end", () =>
    finish(
      data === token ? 0 : 1,
      data === token ? "redirected" : `not redirected: got ${JSON.stringify(data)}`,
    ),
  );
  socket.on("error", (e) => finish(1, `connect to ${host}:${portText} failed: ${e.message}`));
}

const server = net.createServer((s) => s.end(token));
server.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EADDRINUSE") connect(false);
  else finish(1, `listen on ${listenText} failed: ${e.message}`);
});
server.listen({ port: Number(listenText), host: "::" }, () => connect(true));
