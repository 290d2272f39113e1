import { spawn } from "node:child_process";
import type { Command } from "commander";
import { createLiveFeed } from "../../dashboard/live.ts";
import { startDashboardServer } from "../../dashboard/server.ts";
import { loadKubeConfig } from "../../edge/kube-client.ts";
import { ErrorCode, MeshError } from "../../errors.ts";
import { integer } from "../flags.ts";
import { type KubeFlags, kubeOptions, stderrLogger, untilStopSignal } from "../service.ts";

/** Linkerd viz's dashboard port, so muscle memory works. */
const DEFAULT_PORT = 50750;

interface DashboardFlags extends KubeFlags {
  port: number;
  browser: boolean;
}

/** Opens `url` in the desktop's browser when there is one (xdg-open); a missing opener is not an error. */
function openBrowser(url: string): void {
  const child = spawn("xdg-open", [url], { detached: true, stdio: "ignore" });
  child.on("error", () => process.stderr.write(`(no browser opener found: open ${url} yourself)\n`));
  child.unref();
}

/** `osm dashboard [--port P] [--no-browser]`: the web dashboard on 127.0.0.1, until stopped. */
export function registerDashboard(program: Command): void {
  kubeOptions(
    program
      .command("dashboard")
      .description(
        "serve the web dashboard (mesh, pods, explain, live decisions, MeshConfig editor) on 127.0.0.1",
      )
      .option("--port <port>", "local port to listen on (0: any free port)", integer("--port"), DEFAULT_PORT)
      .option("--no-browser", "do not open a browser, only print the URL"),
  ).action(async (flags: DashboardFlags) => {
    if (flags.port > 65535) {
      throw new MeshError(ErrorCode.InvalidArgument, `--port: "${flags.port}" is not a port (0-65535)`);
    }
    const kubeConfig = loadKubeConfig(flags);
    const { logger, flush } = stderrLogger("dashboard", "warn");
    const feed = createLiveFeed({ kubeConfig, osmNamespace: flags.osmNamespace, logger });
    let server: Awaited<ReturnType<typeof startDashboardServer>>;
    try {
      server = await startDashboardServer({
        kubeConfig,
        osmNamespace: flags.osmNamespace,
        feed,
        host: "127.0.0.1",
        port: flags.port,
      });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "EADDRINUSE") {
        throw new MeshError(ErrorCode.InvalidArgument, `--port: 127.0.0.1:${flags.port} is in use`, {
          hint: "pick another with --port, or --port 0 for any free one",
        });
      }
      throw error;
    }
    process.stdout.write(`osm dashboard: ${server.url} (Ctrl-C to stop)\n`);
    void feed.start();
    if (flags.browser) openBrowser(server.url);
    await untilStopSignal(logger);
    await server.close();
    await feed.stop();
    flush();
  });
}
