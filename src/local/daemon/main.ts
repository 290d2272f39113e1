/**
 * Entry point of the background daemon process (`osm mesh up` spawns it detached):
 * `node main.ts <stateDir>` reads `<stateDir>/daemon.json`, logs (pino JSON) to `<stateDir>/daemon.log`,
 * and stops cleanly on SIGTERM/SIGINT or `POST /shutdown`.
 */
import { readFileSync } from "node:fs";
import pino from "pino";
import type { DaemonConfig } from "./config.ts";
import { statePaths } from "./config.ts";
import { removeOwnPidfile, startDaemon } from "./daemon.ts";

const stateDir = process.argv[2];
if (!stateDir) {
  process.stderr.write("usage: main.ts <stateDir>\n");
  process.exit(2);
}
const paths = statePaths(stateDir);
const config = JSON.parse(readFileSync(paths.config, "utf8")) as DaemonConfig;
const logger = pino(
  { level: process.env.OSM_LOG_LEVEL ?? "info" },
  pino.destination({ dest: paths.log, append: true, sync: true }),
);
try {
  const daemon = await startDaemon(config, logger);
  for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => void daemon.stop(false));
  // The parent (osm mesh up) reads this line to learn the daemon is ready.
  process.stdout.write("ready\n");
  await daemon.stopped;
  process.exit(0);
} catch (error) {
  logger.error({ err: error }, "daemon failed to start");
  process.stderr.write(`${(error as Error).message}\n`);
  const hint = (error as { hint?: string }).hint;
  if (hint) process.stderr.write(`hint: ${hint}\n`);
  removeOwnPidfile(stateDir);
  process.exit(1);
}
