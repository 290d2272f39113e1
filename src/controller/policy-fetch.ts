/**
 * The client side of `GET /v1/interception-policies/<sha256>` (http-api.ts): what osm-init runs for a policy
 * too large for the PodSpec fetches the canonical text by the hash recorded on its pod, and refuses any other.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { recordingOf } from "../config/index.ts";
import { ErrorCode, MeshError } from "../errors.ts";
import { INTERCEPTION_POLICY_PATH } from "./http-api.ts";

/**
 * The canonical policy text whose sha256 is `hash`. The controller answers 404 until it has seen the new pod
 * (and 503 while it starts), so both are retried until `timeoutMs`; a text with another hash is refused.
 */
export async function fetchPolicyText(controller: string, hash: string, timeoutMs: number): Promise<string> {
  const url = new URL(`${INTERCEPTION_POLICY_PATH}${hash}`, controller).toString();
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      const response = await fetch(url, {
        signal: AbortSignal.timeout(Math.max(1000, deadline - Date.now())),
      });
      const body = await response.text();
      if (response.ok) {
        const received = recordingOf(body).hash;
        if (received !== hash) {
          throw new MeshError(
            ErrorCode.VerifyFailed,
            `the controller at ${controller} answered a policy whose sha256 is ${received}, not ${hash}`,
          );
        }
        return body;
      }
      last = `HTTP ${response.status}: ${body.trim()}`;
    } catch (error) {
      if (error instanceof MeshError) throw error;
      last = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() >= deadline) {
      throw new MeshError(
        ErrorCode.Unavailable,
        `osm-init: could not fetch interception policy ${hash} from ${url} within ${timeoutMs / 1000}s: ${last}`,
        {
          hint: "is the controller running? If it restarted after a MeshConfig change while this pod waited to start, recreate the pod",
        },
      );
    }
    await sleep(500);
  }
}
