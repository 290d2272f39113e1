/**
 * Follows one container's log through the API server (`pods/log?follow=true`), line by line, with the
 * kubeconfig's credentials. Not client-node's `Log`: it pipes the response into the caller's stream and
 * leaves that response's errors unhandled, so aborting a follow (a pod going away) crashes the process.
 */
import * as http from "node:http";
import * as https from "node:https";
import type { KubeConfig } from "@kubernetes/client-node";

export interface PodLogTarget {
  readonly namespace: string;
  readonly pod: string;
  readonly container: string;
  /** Lines of the log before now to start with. */
  readonly tailLines: number;
}

/**
 * Calls `onLine` for each line until the log ends (the container stopped), `signal` aborts (both resolve),
 * or the request fails (rejects, with the HTTP status when the server answered).
 */
export async function followPodLog(
  kubeConfig: KubeConfig,
  target: PodLogTarget,
  onLine: (line: string) => void,
  signal: AbortSignal,
): Promise<void> {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error("the kubeconfig has no current cluster");
  const path = `/api/v1/namespaces/${encodeURIComponent(target.namespace)}/pods/${encodeURIComponent(target.pod)}/log`;
  const url = new URL(`${cluster.server.replace(/\/$/, "")}${path}`);
  url.searchParams.set("container", target.container);
  url.searchParams.set("follow", "true");
  url.searchParams.set("tailLines", String(target.tailLines));
  const options: https.RequestOptions = { method: "GET", signal };
  await kubeConfig.applyToHTTPSOptions(options);
  return new Promise<void>((resolve, reject) => {
    const request = (url.protocol === "https:" ? https : http).request(url, options, (response) => {
      if (response.statusCode !== 200) {
        response.resume();
        reject(
          new Error(`reading the log of ${target.namespace}/${target.pod}: HTTP ${response.statusCode}`),
        );
        return;
      }
      response.setEncoding("utf8");
      let rest = "";
      response.on("data", (chunk: string) => {
        const lines = (rest + chunk).split("\n");
        rest = lines.pop() ?? "";
        for (const line of lines) onLine(line);
      });
      response.on("end", () => resolve());
      // A reset or an abort mid-stream ends the follow like the end of the log.
      response.on("error", () => resolve());
    });
    request.on("error", (error) => (signal.aborted ? resolve() : reject(error)));
    request.end();
  });
}
