/**
 * The injector's inputs and outputs. Pure data; the webhook (src/kube/) fetches the namespace and MeshConfig
 * and mints the random piece (proxy UUID), so injection itself is deterministic.
 */
import type { V1Namespace, V1Pod } from "@kubernetes/client-node";
import type { MeshConfig } from "../config/index.ts";

/** One RFC 6902 operation (the subset the injector emits). */
export type JsonPatchOperation =
  | { readonly op: "add" | "replace"; readonly path: string; readonly value: unknown }
  | { readonly op: "remove"; readonly path: string };

/** How osm-init programs interception: OSM's iptables script byte for byte, or chosen on the node at run time. */
export type InitBackend = "iptables" | "nftables" | "auto";

export interface InjectorOptions {
  readonly meshName: string;
  readonly osmNamespace: string;
  /** OSM_DEFAULT_ENVOY_IMAGE: used when MeshConfig `spec.sidecar.envoyImage` is empty. */
  readonly defaultSidecarImage?: string;
  /** OSM_DEFAULT_ENVOY_WINDOWS_IMAGE. */
  readonly defaultSidecarWindowsImage?: string;
  /** OSM_DEFAULT_INIT_CONTAINER_IMAGE. */
  readonly defaultInitContainerImage?: string;
  /** OSM's `osmContainerPullPolicy` (Helm `osm.image.pullPolicy`). */
  readonly imagePullPolicy: "Always" | "IfNotPresent" | "Never";
  /**
   * argv prefix that runs the osm CLI inside the sidecar container, e.g. `["osm"]` (the embedded node agent
   * resolves it on the host's PATH; a real image puts `osm` on its PATH too).
   */
  readonly osmCommand: readonly string[];
  /** Base URL of the controller's sidecar watch API, e.g. `http://osm-controller.osm-system.svc:15128`. */
  readonly controllerUrl: string;
  readonly initBackend: InitBackend;
  /**
   * Strict egress for pods whose namespace and pod say nothing (`osm-ts.io/egress-strict`): app containers
   * lose CAP_SETUID/CAP_SETGID, so none can switch to the proxy uid. Default false.
   */
  readonly egressStrict?: boolean;
}

/** Per-admission random values, minted by the caller so the injector stays pure and testable. */
export interface InjectionSeeds {
  /** Value of the `osm-proxy-uuid` label (OSM: a random UUID per pod). */
  readonly proxyUuid: string;
}

export interface InjectionInput {
  readonly pod: V1Pod;
  /** The pod's namespace object; its labels and annotations drive the decision. */
  readonly namespace: V1Namespace;
  /** Validated MeshConfig (src/config validateMeshConfig). */
  readonly meshConfig: MeshConfig;
  readonly seeds: InjectionSeeds;
  readonly options: InjectorOptions;
}

/** Why a pod is admitted unchanged (for logs and tests). */
export type SkipReason =
  | "host-network"
  | "system-namespace"
  | "osm-namespace"
  | "namespace-not-monitored"
  | "namespace-ignored"
  | "not-enabled"
  | "pod-disabled";

export type InjectionResult =
  | { readonly kind: "skip"; readonly reason: SkipReason }
  | {
      readonly kind: "inject";
      readonly patch: readonly JsonPatchOperation[];
      readonly warnings: readonly string[];
      /** Hash of the effective interception policy (undefined for Windows pods: no osm-init). */
      readonly policyHash: string | undefined;
    }
  | {
      readonly kind: "deny";
      /** OSM's message when OSM has one, verbatim. */
      readonly message: string;
      readonly hint: string | undefined;
    };
