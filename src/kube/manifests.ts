/**
 * The control plane's install manifests, as objects (pure): one source for `osm install`, `--dry-run` and the
 * kustomize base in deploy/ (generated from here by scripts/generate-deploy.ts; a test keeps them equal).
 * RBAC is least privilege; every rule carries the reason it exists (rendered as a YAML comment).
 */
import { defaultMeshConfig, validateMeshConfig } from "../config/index.ts";
import {
  ANNOTATION_LIVE_INTERCEPTION_UPDATES,
  CONTROLLER_SIDECAR_API_PORT,
  INJECTOR_SERVICE_NAME,
  INJECTOR_SERVICE_PORT,
  LABEL_APP,
  LABEL_MESH_NAME,
  MESH_CONFIG_GROUP,
  MESH_CONFIG_NAME,
  OSM_CONTROLLER_NAME,
  OSM_NODE_METRICS_PORT,
  OSM_NODE_NAME,
} from "../constants.ts";
import { SMI_KINDS } from "../smi/validate.ts";
import type { InstallValues } from "./install-values.ts";
import {
  buildMutatingWebhookConfiguration,
  buildValidatingWebhookConfiguration,
  mutatingWebhookConfigurationName,
  validatingWebhookConfigurationName,
} from "./webhook-configs.ts";

export type Manifest = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
};

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
  /** Why this rule exists: which code path needs which verb (rendered as a comment, never sent). */
  why: string;
}

export const PRESET_CONFIGMAP_NAME = "preset-mesh-config";
export const PRESET_CONFIGMAP_KEY = "preset-mesh-config.json";

function imageRef(values: InstallValues, name: string, override: string | undefined): string {
  return override ?? `${values.image.registry}/${name}:${values.image.tag}`;
}

export function controllerUrl(values: InstallValues): string {
  return (
    values.controllerUrl ??
    `http://${OSM_CONTROLLER_NAME}.${values.osmNamespace}.svc.cluster.local:${CONTROLLER_SIDECAR_API_PORT}`
  );
}

export function resolvedImages(values: InstallValues): {
  controller: string;
  sidecar: string;
  init: string;
  node: string;
} {
  return {
    controller: imageRef(values, "osm-controller", values.controllerImage),
    sidecar: imageRef(values, "osm-sidecar", values.sidecarImage),
    init: imageRef(values, "osm-init", values.initContainerImage),
    node: imageRef(values, "osm-node", values.nodeAgentImage),
  };
}

/** The preset MeshConfig: OSM v1.2 chart defaults with the --set fields merged in, validated. */
export function buildPresetMeshConfig(values: InstallValues): Manifest {
  const preset = defaultMeshConfig();
  const candidate = {
    apiVersion: preset.apiVersion,
    kind: preset.kind,
    metadata: { name: MESH_CONFIG_NAME, namespace: values.osmNamespace },
    spec: {
      ...preset.spec,
      traffic: { ...preset.spec.traffic, ...values.meshConfigSpec.traffic },
      sidecar: { ...preset.spec.sidecar, ...values.meshConfigSpec.sidecar },
    },
  };
  // Same validator as the webhook: a bad --set value fails here, naming the field.
  const valid = validateMeshConfig(candidate);
  const annotations = values.liveInterceptionUpdates
    ? { annotations: { [ANNOTATION_LIVE_INTERCEPTION_UPDATES]: "true" } }
    : {};
  return {
    apiVersion: valid.apiVersion,
    kind: valid.kind,
    metadata: { name: MESH_CONFIG_NAME, namespace: values.osmNamespace, ...annotations },
    spec: valid.spec,
  };
}

function labels(values: InstallValues, app: string): Record<string, string> {
  return {
    [LABEL_APP]: app,
    [LABEL_MESH_NAME]: values.meshName,
    "app.kubernetes.io/name": "openservicemesh.io",
  };
}

/** A Role or RoleBinding lives in the control plane's namespace; the cluster-wide kinds have none. */
function rbacMetadata(name: string, namespaced: boolean, app: string, values: InstallValues) {
  return { name, ...(namespaced ? { namespace: values.osmNamespace } : {}), labels: labels(values, app) };
}

function role(
  kind: "ClusterRole" | "Role",
  name: string,
  app: string,
  values: InstallValues,
  rules: PolicyRule[],
): Manifest {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind,
    metadata: rbacMetadata(name, kind === "Role", app, values),
    rules,
  } as Manifest;
}

function binding(
  kind: "ClusterRoleBinding" | "RoleBinding",
  name: string,
  sa: string,
  values: InstallValues,
): Manifest {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind,
    metadata: rbacMetadata(name, kind === "RoleBinding", sa, values),
    roleRef: {
      apiGroup: "rbac.authorization.k8s.io",
      kind: kind === "RoleBinding" ? "Role" : "ClusterRole",
      name,
    },
    subjects: [{ kind: "ServiceAccount", name: sa, namespace: values.osmNamespace }],
  };
}

/** A service account's ClusterRole and Role named `name`, each bound to it. */
function grants(
  values: InstallValues,
  name: string,
  sa: string,
  cluster: PolicyRule[],
  namespaced: PolicyRule[],
): Manifest[] {
  return [
    role("ClusterRole", name, sa, values, cluster),
    binding("ClusterRoleBinding", name, sa, values),
    role("Role", name, sa, values, namespaced),
    binding("RoleBinding", name, sa, values),
  ];
}

/** The controller's, the injector's and the osm-node DaemonSet's permissions, each rule with its reason. */
export function rbacRules(values: InstallValues): {
  controllerCluster: PolicyRule[];
  controllerNamespaced: PolicyRule[];
  injectorCluster: PolicyRule[];
  injectorNamespaced: PolicyRule[];
  nodeAgentCluster: PolicyRule[];
  nodeAgentNamespaced: PolicyRule[];
} {
  return {
    nodeAgentCluster: [
      {
        apiGroups: [""],
        resources: ["pods"],
        verbs: ["list", "watch"],
        why: "informer on the pods of its own node only (fieldSelector spec.nodeName=$NODE_NAME; RBAC cannot narrow by field)",
      },
      {
        apiGroups: [""],
        resources: ["pods/status"],
        verbs: ["patch"],
        why: "record the policy applied live on the pod (osm-ts.io/interception-* annotations): a pods/status patch may change annotations but never the spec, narrower than patch on pods",
      },
      {
        apiGroups: [""],
        resources: ["namespaces"],
        verbs: ["list", "watch"],
        why: "a namespace's openservicemesh.io/* annotations are inputs of its pods' policy",
      },
      {
        apiGroups: [""],
        resources: ["events"],
        verbs: ["create"],
        why: "InterceptionUpdated, InterceptionUpdateFailed and InterceptionDriftRepaired Events on pods",
      },
    ],
    nodeAgentNamespaced: [
      {
        apiGroups: [MESH_CONFIG_GROUP],
        resources: ["meshconfigs"],
        verbs: ["list", "watch"],
        why: "informer on the MeshConfig (exclusions, enableEgress, the osm-ts.io/live-interception-updates switch), this namespace only",
      },
    ],
    controllerCluster: [
      {
        apiGroups: [""],
        resources: ["namespaces", "services", "endpoints"],
        verbs: ["list", "watch"],
        why: "informers: which namespaces the mesh monitors, and the services/endpoints sidecars can reach",
      },
      {
        apiGroups: [""],
        resources: ["pods"],
        verbs: ["list", "watch", "patch"],
        why: "informer on meshed pods (backends, sidecar auth, staleness); patch writes only the osm-ts.io/interception-stale annotation",
      },
      {
        apiGroups: [""],
        resources: ["events"],
        verbs: ["create"],
        why: "one EgressBypassPossible Warning event on a meshed pod that can still send as the proxy uid while egress is disabled",
      },
      ...SMI_KINDS.map((kind) => ({
        apiGroups: [kind.apiVersion.split("/")[0]!],
        resources: [kind.plural],
        verbs: ["list", "watch"],
        why: `informer on SMI ${kind.kind}s: with permissive mode off they decide which sidecars may talk`,
      })),
      {
        apiGroups: ["authentication.k8s.io"],
        resources: ["tokenreviews"],
        verbs: ["create"],
        why: "sidecar auth: the API server verifies each sidecar's projected osm-controller token (TokenReview), as system:auth-delegator allows",
      },
    ],
    controllerNamespaced: [
      {
        apiGroups: [MESH_CONFIG_GROUP],
        resources: ["meshconfigs"],
        verbs: ["get", "list", "watch"],
        why: "informer on the MeshConfig (enableEgress and endpoints are pushed to sidecars live)",
      },
      {
        apiGroups: [MESH_CONFIG_GROUP],
        resources: ["meshconfigs"],
        verbs: ["create"],
        why: "bootstrap: create osm-mesh-config from the preset only if absent (create cannot be limited by name)",
      },
    ],
    injectorCluster: [
      {
        apiGroups: [""],
        resources: ["namespaces"],
        verbs: ["get"],
        why: "admission: the pod's namespace labels and annotations decide injection (docs/osm-behaviour.md §4)",
      },
      {
        apiGroups: ["admissionregistration.k8s.io"],
        resources: ["mutatingwebhookconfigurations"],
        resourceNames: [mutatingWebhookConfigurationName(values.meshName)],
        verbs: ["get", "update"],
        why: "publish the self-signed CA into caBundle of this mesh's injector webhook, and on CA rotation",
      },
      {
        apiGroups: ["admissionregistration.k8s.io"],
        resources: ["validatingwebhookconfigurations"],
        resourceNames: [validatingWebhookConfigurationName(values.meshName)],
        verbs: ["get", "update"],
        why: "publish the same CA into this mesh's MeshConfig validator webhook",
      },
    ],
    injectorNamespaced: [
      {
        apiGroups: [MESH_CONFIG_GROUP],
        resources: ["meshconfigs"],
        resourceNames: [MESH_CONFIG_NAME],
        verbs: ["get"],
        why: "admission: read the current MeshConfig (exclusions, images, privileged init) for each new pod",
      },
    ],
  };
}

function probe(path: string, port: number, scheme: "HTTP" | "HTTPS"): Record<string, unknown> {
  return { httpGet: { path, port, scheme }, initialDelaySeconds: 1, periodSeconds: 5, timeoutSeconds: 3 };
}

// The image's USER (deploy/docker/controller.Dockerfile), stated in the PodSpec too: a runtime that ignores
// images (the embedded node agent) then runs the same uid, which also keeps root's ~/.kube/config on such a
// host out of the in-cluster config lookup.
const CONTAINER_SECURITY = {
  runAsNonRoot: true,
  runAsUser: 65532,
  runAsGroup: 65532,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ["ALL"] },
};

function deployment(
  values: InstallValues,
  name: string,
  container: Record<string, unknown>,
  serviceAccountName: string,
): Manifest {
  const l = labels(values, name);
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace: values.osmNamespace, labels: l },
    spec: {
      replicas: 1,
      selector: { matchLabels: { [LABEL_APP]: name } },
      template: {
        metadata: { labels: l },
        spec: {
          serviceAccountName,
          nodeSelector: { "kubernetes.io/os": "linux" },
          containers: [container],
        },
      },
    },
  };
}

function service(values: InstallValues, name: string, port: number, portName: string): Manifest {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: values.osmNamespace, labels: labels(values, name) },
    spec: {
      selector: { [LABEL_APP]: name },
      ports: [{ name: portName, port, targetPort: port, protocol: "TCP" }],
    },
  };
}

/**
 * The osm-node DaemonSet's container: root with exactly the capabilities its work needs (each explained in
 * deploy/README.md), everything else dropped; no privilege escalation beyond them is asked for. Not
 * `privileged`: that would add every capability and every device.
 */
export const NODE_AGENT_CAPABILITIES = ["NET_ADMIN", "NET_RAW", "SYS_ADMIN", "SYS_PTRACE"];

/** The osm-node DaemonSet and its identity: live interception updates on every node (`osm.nodeAgent.enabled`). */
export function buildNodeAgentManifests(values: InstallValues): Manifest[] {
  const ns = values.osmNamespace;
  const rules = rbacRules(values);
  const rbac = `${OSM_NODE_NAME}-${values.meshName}`;
  const l = labels(values, OSM_NODE_NAME);
  const container = {
    name: OSM_NODE_NAME,
    image: resolvedImages(values).node,
    imagePullPolicy: values.image.pullPolicy,
    command: [
      ...values.osmCommand,
      "node-agent",
      "--node",
      "$(NODE_NAME)",
      "--osm-namespace",
      ns,
      "--mesh-name",
      values.meshName,
      "--listen",
      `0.0.0.0:${OSM_NODE_METRICS_PORT}`,
      ...(values.kubeconfig ? ["--kubeconfig", values.kubeconfig] : []),
      "--log-level",
      values.osmLogLevel,
    ],
    env: [{ name: "NODE_NAME", valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "spec.nodeName" } } }],
    ports: [{ name: "metrics", containerPort: OSM_NODE_METRICS_PORT, protocol: "TCP" }],
    readinessProbe: probe("/readyz", OSM_NODE_METRICS_PORT, "HTTP"),
    livenessProbe: probe("/healthz", OSM_NODE_METRICS_PORT, "HTTP"),
    resources: { requests: { cpu: "50m", memory: "96Mi" }, limits: { memory: "512Mi" } },
    securityContext: {
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"], add: NODE_AGENT_CAPABILITIES },
      seccompProfile: { type: "RuntimeDefault" },
    },
  };
  return [
    {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: OSM_NODE_NAME, namespace: ns, labels: l },
    },
    ...grants(values, rbac, OSM_NODE_NAME, rules.nodeAgentCluster, rules.nodeAgentNamespaced),
    {
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: { name: OSM_NODE_NAME, namespace: ns, labels: l },
      spec: {
        selector: { matchLabels: { [LABEL_APP]: OSM_NODE_NAME } },
        updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
        template: {
          metadata: { labels: l },
          spec: {
            serviceAccountName: OSM_NODE_NAME,
            // The pods' processes, to find each pod's network namespace (/proc/<pid>/ns/net).
            hostPID: true,
            nodeSelector: { "kubernetes.io/os": "linux" },
            // Every node that may run meshed pods, tainted ones included.
            tolerations: [{ operator: "Exists" }],
            priorityClassName: "system-node-critical",
            terminationGracePeriodSeconds: 5,
            containers: [container],
          },
        },
      },
    },
  ];
}

/** Every object `osm install` applies, in apply order (the CRD and the MeshConfig itself are separate). */
export function buildInstallManifests(values: InstallValues): Manifest[] {
  const ns = values.osmNamespace;
  const images = resolvedImages(values);
  const rules = rbacRules(values);
  const preset = buildPresetMeshConfig(values);
  const controllerRbac = `${OSM_CONTROLLER_NAME}-${values.meshName}`;
  const injectorRbac = `${INJECTOR_SERVICE_NAME}-${values.meshName}`;
  const logLevel = values.osmLogLevel;
  const kubeconfig = values.kubeconfig ? ["--kubeconfig", values.kubeconfig] : [];

  const controllerContainer = {
    name: OSM_CONTROLLER_NAME,
    image: images.controller,
    imagePullPolicy: values.image.pullPolicy,
    command: [
      ...values.osmCommand,
      "controller",
      "run",
      "--osm-namespace",
      ns,
      "--mesh-name",
      values.meshName,
      "--listen",
      `0.0.0.0:${CONTROLLER_SIDECAR_API_PORT}`,
      ...kubeconfig,
      "--log-level",
      logLevel,
    ],
    ports: [{ name: "sidecar-api", containerPort: CONTROLLER_SIDECAR_API_PORT, protocol: "TCP" }],
    readinessProbe: probe("/readyz", CONTROLLER_SIDECAR_API_PORT, "HTTP"),
    livenessProbe: probe("/healthz", CONTROLLER_SIDECAR_API_PORT, "HTTP"),
    resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "512Mi" } },
    securityContext: CONTAINER_SECURITY,
  };
  const injectorContainer = {
    name: INJECTOR_SERVICE_NAME,
    image: images.controller,
    imagePullPolicy: values.image.pullPolicy,
    command: [
      ...values.osmCommand,
      "injector",
      "run",
      "--osm-namespace",
      ns,
      "--mesh-name",
      values.meshName,
      "--listen",
      `0.0.0.0:${INJECTOR_SERVICE_PORT}`,
      "--sidecar-image",
      images.sidecar,
      ...(values.sidecarWindowsImage ? ["--sidecar-windows-image", values.sidecarWindowsImage] : []),
      "--init-container-image",
      images.init,
      "--image-pull-policy",
      values.image.pullPolicy,
      "--controller-url",
      controllerUrl(values),
      "--interception-backend",
      values.interceptionBackend,
      ...(values.egressStrict ? ["--egress-strict"] : []),
      "--osm-command",
      values.osmCommand.join(" "),
      ...kubeconfig,
      "--log-level",
      logLevel,
    ],
    env: [{ name: "POD_IP", valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "status.podIP" } } }],
    ports: [{ name: "webhook", containerPort: INJECTOR_SERVICE_PORT, protocol: "TCP" }],
    readinessProbe: probe("/readyz", INJECTOR_SERVICE_PORT, "HTTPS"),
    livenessProbe: probe("/healthz", INJECTOR_SERVICE_PORT, "HTTPS"),
    resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "512Mi" } },
    securityContext: CONTAINER_SECURITY,
  };

  return [
    {
      apiVersion: "v1",
      kind: "Namespace",
      // `name` lets the injector webhook's namespaceSelector (`name NotIn [osm-system]`) skip this namespace.
      metadata: { name: ns, labels: { name: ns, "app.kubernetes.io/name": "openservicemesh.io" } },
    },
    {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: OSM_CONTROLLER_NAME, namespace: ns, labels: labels(values, OSM_CONTROLLER_NAME) },
    },
    {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: INJECTOR_SERVICE_NAME, namespace: ns, labels: labels(values, INJECTOR_SERVICE_NAME) },
    },
    ...grants(
      values,
      controllerRbac,
      OSM_CONTROLLER_NAME,
      rules.controllerCluster,
      rules.controllerNamespaced,
    ),
    ...grants(values, injectorRbac, INJECTOR_SERVICE_NAME, rules.injectorCluster, rules.injectorNamespaced),
    {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: PRESET_CONFIGMAP_NAME, namespace: ns, labels: labels(values, OSM_CONTROLLER_NAME) },
      data: { [PRESET_CONFIGMAP_KEY]: `${JSON.stringify(preset["spec"], null, 2)}\n` },
    },
    service(values, OSM_CONTROLLER_NAME, CONTROLLER_SIDECAR_API_PORT, "sidecar-api"),
    service(values, INJECTOR_SERVICE_NAME, INJECTOR_SERVICE_PORT, "webhook"),
    deployment(values, OSM_CONTROLLER_NAME, controllerContainer, OSM_CONTROLLER_NAME),
    deployment(values, INJECTOR_SERVICE_NAME, injectorContainer, INJECTOR_SERVICE_NAME),
    ...(values.nodeAgent ? buildNodeAgentManifests(values) : []),
    buildMutatingWebhookConfiguration({ meshName: values.meshName, osmNamespace: ns }) as Manifest,
    buildValidatingWebhookConfiguration({ meshName: values.meshName, osmNamespace: ns }) as Manifest,
  ];
}

/** The object without osm-ts-only fields (`why` on RBAC rules): what is sent to the API server. */
export function toApiObject(manifest: Manifest): Manifest {
  if (manifest.kind !== "ClusterRole" && manifest.kind !== "Role") return manifest;
  const rules = (manifest["rules"] as PolicyRule[]).map(({ why: _why, ...rule }) => rule);
  return { ...manifest, rules };
}
