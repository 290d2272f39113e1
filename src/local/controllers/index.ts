/**
 * The controllers the embedded runtime needs, run inside the API server process against the Api (not over
 * HTTP, but through the same admission): Deployment, ReplicaSet, Endpoints, Namespace (+ default
 * ServiceAccount), garbage collector.
 */
import type { Logger } from "pino";
import { type Clock, systemClock } from "../../edge/clock.ts";
import type { Api } from "../apiserver/api.ts";
import { startDeploymentController } from "./deployment.ts";
import { startEndpointsController } from "./endpoints.ts";
import { startEventTtl } from "./event-ttl.ts";
import { startGarbageCollector } from "./garbage-collector.ts";
import { startNamespaceController } from "./namespace.ts";
import { startReplicaSetController } from "./replicaset.ts";

export { startDeploymentController } from "./deployment.ts";
export { startEndpointsController } from "./endpoints.ts";
export { startEventTtl } from "./event-ttl.ts";
export { startGarbageCollector } from "./garbage-collector.ts";
export { startNamespaceController } from "./namespace.ts";
export { startReplicaSetController } from "./replicaset.ts";

/** Starts every controller; returns the function that stops them all. */
export function startControllers(api: Api, logger: Logger, clock: Clock = systemClock): () => void {
  const stops = [
    startNamespaceController(api, logger),
    startDeploymentController(api, logger, clock),
    startReplicaSetController(api, logger, clock),
    startEndpointsController(api, logger),
    startGarbageCollector(api, logger),
    startEventTtl(api, logger, clock),
  ];
  return () => {
    for (const stop of stops) stop();
  };
}
