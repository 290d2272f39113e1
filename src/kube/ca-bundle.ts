/**
 * Publishes the webhook CA into the webhook configurations' `caBundle` (read → set → replace, retried on
 * 409 Conflict), so kube-apiserver trusts the injector's self-signed certificate. Needs only `get` and
 * `update` on the two named configurations.
 */

import type { KubernetesObject, KubernetesObjectApi } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { apiErrorCode } from "../edge/kube-client.ts";
import { mutatingWebhookConfigurationName, validatingWebhookConfigurationName } from "./webhook-configs.ts";

export interface CaBundlePublisher {
  /** Sets `caBundle` (base64 of PEM) on every webhook of both configurations. Rejects when it cannot. */
  publish(caBundleBase64: string): Promise<void>;
}

interface WebhookConfiguration extends KubernetesObject {
  webhooks?: { clientConfig?: { caBundle?: string } }[];
}

const MAX_CONFLICT_RETRIES = 5;

/** A publisher over client-node's generic object API (works against kube-apiserver and the embedded API). */
export function createCaBundlePublisher(
  client: KubernetesObjectApi,
  meshName: string,
  logger: Logger,
): CaBundlePublisher {
  const targets = [
    { kind: "MutatingWebhookConfiguration", name: mutatingWebhookConfigurationName(meshName) },
    { kind: "ValidatingWebhookConfiguration", name: validatingWebhookConfigurationName(meshName) },
  ];
  async function patchOne(kind: string, name: string, caBundle: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const current = await client.read<WebhookConfiguration>({
        apiVersion: "admissionregistration.k8s.io/v1",
        kind,
        metadata: { name },
      });
      const webhooks = current.webhooks ?? [];
      if (webhooks.every((w) => w.clientConfig?.caBundle === caBundle)) return;
      for (const w of webhooks) w.clientConfig = { ...w.clientConfig, caBundle };
      try {
        await client.replace(current);
        logger.info({ kind, name }, "caBundle published");
        return;
      } catch (error) {
        if (apiErrorCode(error) !== 409 || attempt >= MAX_CONFLICT_RETRIES) throw error;
      }
    }
  }
  return {
    async publish(caBundle) {
      for (const t of targets) await patchOne(t.kind, t.name, caBundle);
    },
  };
}
