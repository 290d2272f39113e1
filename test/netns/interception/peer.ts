/**
 * Test peer processes for the interception namespace tests (run inside a namespace with `ip netns exec`):
 * - `serve LABEL PORT...`: listens on every port on `::` (IPv4 and IPv6); answers `LABEL <local port>` to
 *   each connection, then closes. Prints `ready` once every port listens.
 * - `connect TARGETS_JSON`: connects to each `[ip, port]` (bounded: 1.5 s each, 16 at a time) and prints a
 *   JSON array of the answers (or `error: ...`).
 */
import net from "node:net";

const [mode, ...args] = process.argv.slice(2);

if (mode === "serve") {
  const [label, ...ports] = args;
  let pending = ports.length;
  for (const port of ports) {
    const server = net.createServer((s) => {
      s.on("error", () => {});
      s.end(`${label} ${s.localPort}`);
    });
    server.listen({ port: Number(port), host: "::" }, () => {
      pending -= 1;
      if (pending === 0) process.stdout.write("ready\n");
    });
  }
} else if (mode === "connect") {
  const targets = JSON.parse(args[0]!) as [string, number][];
  const results: string[] = new Array(targets.length);
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const [host, port] = targets[i]!;
      const socket = net.connect({ host, port });
      let data = "";
      const done = (r: string) => {
        results[i] = r;
        socket.destroy();
        resolve();
      };
      socket.setTimeout(1500, () => done("error: timeout"));
      socket.on("data", (b: Buffer) => {
        data += b.toString();
      });
      socket.on("end", () => done(data));
      socket.on("error", (e: NodeJS.ErrnoException) => done(`error: ${e.code ?? e.message}`));
    });
  let next = 0;
  const worker = async () => {
    while (next < targets.length) await one(next++);
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  process.stdout.write(`${JSON.stringify(results)}\n`);
} else {
  process.stderr.write(`unknown mode ${String(mode)}\n`);
  process.exit(2);
}
