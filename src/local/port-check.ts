/** Whether a TCP port can be listened on, asked before a component that would fail less clearly tries it. */
import { createServer } from "node:net";
import { ErrorCode, MeshError } from "../errors.ts";

/** Throws a MeshError naming `what` when `host:port` cannot be listened on (taken, or no such address). */
export async function assertPortFree(host: string, port: number, what: string, hint: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.once("error", (error: NodeJS.ErrnoException) => {
      reject(
        new MeshError(
          ErrorCode.Unavailable,
          error.code === "EADDRINUSE"
            ? `port ${port} on ${host} is already in use, so ${what} cannot listen there`
            : `cannot listen on ${host}:${port} for ${what}: ${error.message}`,
          { hint, cause: error },
        ),
      );
    });
    server.listen(port, host, () => server.close(() => resolve()));
  });
}
