/**
 * OSM's names and numbers, in one place. Each cites the OSM v1.2.4 source it comes from
 * (repository openservicemesh/osm). Changing one breaks compatibility with OSM.
 */

// pkg/constants/constants.go
export const ENVOY_ADMIN_PORT = 15000;
export const ENVOY_OUTBOUND_LISTENER_PORT = 15001;
export const ENVOY_INBOUND_LISTENER_PORT = 15003;
export const ENVOY_PROMETHEUS_INBOUND_LISTENER_PORT = 15010;
export const LIVENESS_PROBE_PORT = 15901;
export const READINESS_PROBE_PORT = 15902;
export const STARTUP_PROBE_PORT = 15903;
export const HEALTHCHECK_PORT = 15904;
/** The sidecar's uid; `-m owner --uid-owner 1500` keeps its own traffic from being redirected. */
export const ENVOY_UID = 1500;
export const INIT_CONTAINER_NAME = "osm-init";
/** OSM names the sidecar container `envoy`; ours keeps the name so `kubectl logs -c envoy` scripts work. */
export const SIDECAR_CONTAINER_NAME = "envoy";
export const ENVOY_UNIQUE_ID_LABEL_NAME = "osm-proxy-uuid";
export const ADS_PORT = 15128;

// pkg/injector/iptables.go: chain names
export const CHAIN_INBOUND = "OSM_PROXY_INBOUND";
export const CHAIN_IN_REDIRECT = "OSM_PROXY_IN_REDIRECT";
export const CHAIN_OUTBOUND = "OSM_PROXY_OUTBOUND";
export const CHAIN_OUT_REDIRECT = "OSM_PROXY_OUT_REDIRECT";
/** iptables' multiport match takes at most 15 ports (linkerd2-proxy-init names the same limit). */
export const MULTIPORT_MAX_PORTS = 15;

// pkg/constants/constants.go: annotations and labels
export const ANNOTATION_OUTBOUND_IP_RANGE_EXCLUSION_LIST =
  "openservicemesh.io/outbound-ip-range-exclusion-list";
export const ANNOTATION_OUTBOUND_IP_RANGE_INCLUSION_LIST =
  "openservicemesh.io/outbound-ip-range-inclusion-list";
export const ANNOTATION_OUTBOUND_PORT_EXCLUSION_LIST = "openservicemesh.io/outbound-port-exclusion-list";
export const ANNOTATION_INBOUND_PORT_EXCLUSION_LIST = "openservicemesh.io/inbound-port-exclusion-list";
export const ANNOTATION_SIDECAR_INJECTION = "openservicemesh.io/sidecar-injection";
export const ANNOTATION_METRICS = "openservicemesh.io/metrics";
/** A label despite the Go constant's name (OSMKubeResourceMonitorAnnotation). */
export const LABEL_MONITORED_BY = "openservicemesh.io/monitored-by";
export const LABEL_IGNORE = "openservicemesh.io/ignore";

// cmd/osm-bootstrap, charts/osm
export const MESH_CONFIG_NAME = "osm-mesh-config";
export const DEFAULT_OSM_NAMESPACE = "osm-system";
export const DEFAULT_MESH_NAME = "osm";
export const MESH_CONFIG_GROUP = "config.openservicemesh.io";

// pkg/injector/webhook.go
export const INJECTOR_WEBHOOK_NAME = "osm-inject.k8s.io";
export const INJECTOR_SERVICE_NAME = "osm-injector";
export const INJECTOR_SERVICE_PORT = 9090;
export const INJECTOR_WEBHOOK_PATH = "/mutate-pod-creation";

// osm-ts's own names (not OSM's): the controller and the injector share them.
/** Pod annotation the injector writes at admission: sha256 (hex) of the canonical interception policy text. */
export const ANNOTATION_INTERCEPTION_POLICY_HASH = "osm-ts.io/interception-policy-hash";
/** Pod annotation the injector writes at admission: the canonical interception policy text the pod was given. */
export const ANNOTATION_INTERCEPTION_POLICY = "osm-ts.io/interception-policy";
/**
 * Pod annotation the injector writes instead of the text when the policy is too large to carry on the pod:
 * where the policy was computed from (`MeshConfig osm-system/osm-mesh-config generation 7`).
 */
export const ANNOTATION_INTERCEPTION_POLICY_SOURCE = "osm-ts.io/interception-policy-source";
/** Pod annotation the controller maintains: the diff (`+203.0.113.10/32 -10.0.0.0/8`) while the pod is stale. */
export const ANNOTATION_INTERCEPTION_STALE = "osm-ts.io/interception-stale";
/**
 * MeshConfig annotation, "true" to opt in: the node agent applies interception changes to running pods in place
 * (`osm install --set osm.liveInterceptionUpdates=true` sets it). Absent: OSM's behaviour, pods go STALE.
 */
export const ANNOTATION_LIVE_INTERCEPTION_UPDATES = "osm-ts.io/live-interception-updates";
/** Pod annotation the node agent writes when it changed the pod's rules live: the RFC 3339 time. */
export const ANNOTATION_INTERCEPTION_UPDATED_LIVE = "osm-ts.io/interception-updated-live";
/** Pod annotation the node agent writes while a live update of the pod fails: the reason (the old rules stay). */
export const ANNOTATION_INTERCEPTION_LIVE_FAILED = "osm-ts.io/interception-live-failed";
/**
 * Namespace or pod annotation (the pod's wins), enabled|disabled: strict egress. Meshed app containers lose
 * CAP_SETUID/CAP_SETGID and may not be privileged or add capabilities that reach the proxy uid or the rules.
 */
export const ANNOTATION_EGRESS_STRICT = "osm-ts.io/egress-strict";
/** The controller's sidecar watch API port (OSM's ADS port; osm-ts serves HTTP/JSON there instead of xDS). */
export const CONTROLLER_SIDECAR_API_PORT = ADS_PORT;

// pkg/constants/constants.go (OSMControllerName, AppLabel): `osm namespace add` refuses the namespace that
// hosts a Deployment labelled app=osm-controller, and finds the mesh by the label meshName=<name>.
export const OSM_CONTROLLER_NAME = "osm-controller";
export const LABEL_APP = "app";

/** osm-ts's node agent DaemonSet (live interception updates on a cluster; OSM has none) and its metrics port. */
export const OSM_NODE_NAME = "osm-node";
export const OSM_NODE_METRICS_PORT = 15129;
export const LABEL_MESH_NAME = "meshName";

// pkg/injector/webhook.go, charts/osm/templates: webhook configuration names (suffix: the mesh name)
export const MUTATING_WEBHOOK_CONFIGURATION_PREFIX = "osm-webhook-";
export const VALIDATING_WEBHOOK_CONFIGURATION_PREFIX = "osm-validator-mesh-";

/** osm-ts's MeshConfig validating webhook (OSM has none) and its path on the injector's server. */
export const MESHCONFIG_WEBHOOK_NAME = "osm-validate-meshconfig.k8s.io";
export const MESHCONFIG_WEBHOOK_PATH = "/validate-meshconfig";
/** The SMI access validator (OSM's osm-validator checks TrafficTargets on its own path) on the same server. */
export const SMI_WEBHOOK_NAME = "osm-validate-smi.k8s.io";
export const SMI_WEBHOOK_PATH = "/validate-smi";
