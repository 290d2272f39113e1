/**
 * The soak's traffic, run inside the client namespace (so every connection is intercepted): a steady rate of
 * mixed connections until stdin says `stop`, then one JSON line with what each kind saw.
 * argv: <rate per second> <mesh v4> <external v4>. Kinds, in turn:
 *   short       1 KiB to the echo, read it back, close                       (mesh :9000)
 *   slow-down   256 KiB from the source through a reader paused 300 ms      (mesh :9002)
 *   slow-up     256 KiB to the sink, which reads nothing for 500 ms         (mesh :9003)
 *   half-reset  half-close, reset 200 ms later, while the server holds       (mesh :9004)
 *   server-half the server half-closes, then resets                          (mesh :9005)
 *   reset       1 KiB to the echo, then a reset instead of a close           (mesh :9000)
 *   refused     passthrough to a port nothing listens on                     (external :81)
 *   timeout     passthrough to a port whose SYNs are dropped                 (external :82)
 *   long        echo held open for 20 s with a byte every 2 s                (mesh :9000)
 */
import { connect, type Socket } from "node:net";

const [rateText, mesh, external] = process.argv.slice(2) as [string, string, string];
const rate = Number(rateText);

type Outcome = "ok" | string;
const tally = new Map<string, Map<Outcome, number>>();
let open = 0;

function count(kind: string, outcome: Outcome): void {
  const kindTally = tally.get(kind) ?? new Map<Outcome, number>();
  kindTally.set(outcome, (kindTally.get(outcome) ?? 0) + 1);
  tally.set(kind, kindTally);
}

/** Runs one connection; `script` resolves with its outcome ("ok" or what went wrong). */
function connection(
  kind: string,
  host: string,
  port: number,
  script: (socket: Socket) => Promise<Outcome>,
): void {
  open += 1;
  const socket = connect({ host, port, allowHalfOpen: true });
  const failed = new Promise<Outcome>((resolve) =>
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error")),
  );
  const connected = new Promise<void>((resolve) => socket.once("connect", resolve));
  void Promise.race([connected.then(() => script(socket)), failed]).then((outcome) => {
    open -= 1;
    count(kind, outcome);
    socket.destroy();
  });
}

function ended(socket: Socket): Promise<number> {
  return new Promise((resolve) => {
    let n = 0;
    socket.on("data", (chunk: Buffer) => {
      n += chunk.length;
    });
    socket.once("end", () => resolve(n));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const KIB = 1024;

const kinds: Array<() => void> = [
  () =>
    connection("short", mesh, 9000, async (socket) => {
      const got = ended(socket);
      socket.end(Buffer.alloc(KIB, 1));
      return (await got) === KIB ? "ok" : "short-read";
    }),
  () =>
    connection("slow-down", mesh, 9002, async (socket) => {
      const got = ended(socket);
      socket.pause();
      socket.write(`${256 * KIB}\n`);
      await sleep(300);
      socket.resume();
      return (await got) === 256 * KIB ? "ok" : "short-read";
    }),
  () =>
    connection("slow-up", mesh, 9003, async (socket) => {
      const got = ended(socket);
      socket.end(Buffer.alloc(256 * KIB, 2));
      return (await got) > 0 ? "ok" : "no-reply";
    }),
  () =>
    connection("half-reset", mesh, 9004, async (socket) => {
      socket.end("x");
      await sleep(200);
      socket.resetAndDestroy();
      return "ok";
    }),
  () =>
    connection("server-half", mesh, 9005, async (socket) => {
      await ended(socket);
      return "ok";
    }),
  () =>
    connection("reset", mesh, 9000, async (socket) => {
      socket.write(Buffer.alloc(KIB, 3));
      await sleep(50);
      socket.resetAndDestroy();
      return "ok";
    }),
  () => connection("refused", external, 81, async (socket) => ((await ended(socket)) === 0 ? "end" : "data")),
  () => connection("timeout", external, 82, async (socket) => ((await ended(socket)) === 0 ? "end" : "data")),
  () =>
    connection("long", mesh, 9000, async (socket) => {
      const got = ended(socket);
      for (let i = 0; i < 10; i += 1) {
        socket.write("y");
        await sleep(2000);
      }
      socket.end();
      return (await got) === 10 ? "ok" : "short-read";
    }),
];

let next = 0;
const timer = setInterval(() => {
  kinds[next % kinds.length]!();
  next += 1;
}, 1000 / rate);

process.stdin.once("data", async () => {
  clearInterval(timer);
  for (let waited = 0; open > 0 && waited < 30_000; waited += 100) await sleep(100);
  const result = Object.fromEntries(
    [...tally].map(([kind, outcomes]) => [kind, Object.fromEntries(outcomes)]),
  );
  process.stdout.write(`${JSON.stringify({ started: next, unfinished: open, outcomes: result })}\n`);
  process.exit(0);
});
