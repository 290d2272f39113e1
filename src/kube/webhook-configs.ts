/**
 * The two webhook configurations, as objects (pure): the pod injector exactly as OSM registers it
 * (`pkg/injector/webhook.go: createOrUpdateMutatingWebhook`) and osm-ts's MeshConfig validator (OSM has none).
 * `caBundle` is left out of the install manifests; the injector publishes it at start (ca-bundle.ts).
 */
import {
  INJECTOR_SERVICE_NAME,
  INJECTOR_SERVICE_PORT,
  INJECTOR_WEBHOOK_NAME,
  INJECTOR_WEBHOOK_PATH,
  LABEL_IGNORE,
  LABEL_MONITORED_BY,
  MESH_CONFIG_GROUP,
  MESHCONFIG_WEBHOOK_NAME,
  MESHCONFIG_WEBHOOK_PATH,
  MUTATING_WEBHOOK_CONFIGURATION_PREFIX,
  SMI_WEBHOOK_NAME,
  SMI_WEBHOOK_PATH,
  VALIDATING_WEBHOOK_CONFIGURATION_PREFIX,
} from "../constants.ts";
import { SMI_KINDS } from "../smi/validate.ts";

export interface WebhookConfigOptions {
  readonly meshName: string;
  readonly osmNamespace: string;
  /** base64 of the CA PEM; omitted in install manifests. */
  readonly caBundle?: string;
  /** Seconds the API server waits for an answer (OSM leaves the default, 10). */
  readonly timeoutSeconds?: number;
}

export function mutatingWebhookConfigurationName(meshName: string): string {
  return `${MUTATING_WEBHOOK_CONFIGURATION_PREFIX}${meshName}`;
}

export function validatingWebhookConfigurationName(meshName: string): string {
  return `${VALIDATING_WEBHOOK_CONFIGURATION_PREFIX}${meshName}`;
}

function clientConfig(options: WebhookConfigOptions, path: string): Record<string, unknown> {
  return {
    service: {
      name: INJECTOR_SERVICE_NAME,
      namespace: options.osmNamespace,
      path,
      port: INJECTOR_SERVICE_PORT,
    },
    ...(options.caBundle ? { caBundle: options.caBundle } : {}),
  };
}

function labels(meshName: string): Record<string, string> {
  return { app: INJECTOR_SERVICE_NAME, "app.kubernetes.io/name": "openservicemesh.io", meshName };
}

/** OSM's MutatingWebhookConfiguration `osm-webhook-<mesh>` (docs/osm-behaviour.md §4). */
export function buildMutatingWebhookConfiguration(options: WebhookConfigOptions): Record<string, unknown> {
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name: mutatingWebhookConfigurationName(options.meshName), labels: labels(options.meshName) },
    webhooks: [
      {
        name: INJECTOR_WEBHOOK_NAME,
        clientConfig: clientConfig(options, INJECTOR_WEBHOOK_PATH),
        failurePolicy: "Fail",
        matchPolicy: "Exact",
        namespaceSelector: {
          matchLabels: { [LABEL_MONITORED_BY]: options.meshName },
          matchExpressions: [
            { key: LABEL_IGNORE, operator: "DoesNotExist" },
            { key: "name", operator: "NotIn", values: [options.osmNamespace] },
            { key: "control-plane", operator: "DoesNotExist" },
          ],
        },
        rules: [
          { operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], scope: "*" },
        ],
        sideEffects: "NoneOnDryRun",
        admissionReviewVersions: ["v1"],
        timeoutSeconds: options.timeoutSeconds ?? 10,
      },
    ],
  };
}

/**
 * osm-ts's ValidatingWebhookConfiguration `osm-validator-mesh-<mesh>`: every MeshConfig CREATE/UPDATE goes
 * through the same validator as `osm meshconfig validate`. failurePolicy Fail: while the validator is down a
 * MeshConfig cannot change, which is safer than letting `999.1.1.1/99` through to crash-loop pods later. A
 * second webhook does the same for the SMI objects (TrafficTarget, TCPRoute, HTTPRouteGroup) with `osm policy validate`'s
 * validator.
 */
export function buildValidatingWebhookConfiguration(options: WebhookConfigOptions): Record<string, unknown> {
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingWebhookConfiguration",
    metadata: {
      name: validatingWebhookConfigurationName(options.meshName),
      labels: labels(options.meshName),
    },
    webhooks: [
      {
        name: MESHCONFIG_WEBHOOK_NAME,
        clientConfig: clientConfig(options, MESHCONFIG_WEBHOOK_PATH),
        failurePolicy: "Fail",
        matchPolicy: "Exact",
        rules: [
          {
            operations: ["CREATE", "UPDATE"],
            apiGroups: [MESH_CONFIG_GROUP],
            apiVersions: ["*"],
            resources: ["meshconfigs"],
            scope: "Namespaced",
          },
        ],
        sideEffects: "None",
        admissionReviewVersions: ["v1"],
        timeoutSeconds: options.timeoutSeconds ?? 10,
      },
      {
        name: SMI_WEBHOOK_NAME,
        clientConfig: clientConfig(options, SMI_WEBHOOK_PATH),
        failurePolicy: "Fail",
        matchPolicy: "Exact",
        rules: SMI_KINDS.map((kind) => ({
          operations: ["CREATE", "UPDATE"],
          apiGroups: [kind.apiVersion.split("/")[0]],
          apiVersions: [kind.apiVersion.split("/")[1]],
          resources: [kind.plural],
          scope: "Namespaced",
        })),
        sideEffects: "None",
        admissionReviewVersions: ["v1"],
        timeoutSeconds: options.timeoutSeconds ?? 10,
      },
    ],
  };
}
