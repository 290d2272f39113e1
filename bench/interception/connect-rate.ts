/**
 * `node connect-rate.ts HOST PORT COUNT CONCURRENCY`: after 100 warm-up connections, opens COUNT TCP connections (CONCURRENCY at a time),
 * each waiting for the server's answer and close; prints connections per wall-clock second and per
 * CPU-second of this process. Bounded by COUNT and a
 * 60 s cap.
 */
import net from "node:net";

const [host, portText, countText, concText] = process.argv.slice(2);
const count = Number(countText);
const concurrency = Number(concText);
setTimeout(() => {
  process.stderr.write("connect-rate: 60 s cap reached\n");
  process.exit(1);
}, 60_000).unref();

function once(): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: host!, port: Number(portText) });
    s.on("data", () => {});
    s.on("end", () => {
      s.destroy();
      resolve();
    });
    s.on("error", reject);
  });
}

// Warm up (JIT, ARP/ND, conntrack) before timing.
for (let i = 0; i < 100; i++) await once();
let started = 0;
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (started < count) {
      started += 1;
      await once();
    }
  }),
);
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);
const cpuSeconds = (cpu.user + cpu.system) / 1e6;
// Wall-clock rate, and the rate per CPU-second of this process (the nat chain is walked in its syscalls),
// which a loaded, shared machine disturbs far less.
process.stdout.write(`${(count / seconds).toFixed(0)} ${(count / cpuSeconds).toFixed(0)}\n`);
