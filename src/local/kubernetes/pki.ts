/**
 * The real control plane's identities, as kubeadm lays them out: one cluster CA that signs every serving and
 * client certificate (kube-apiserver trusts client certificates it signed: CN is the user, O the groups), and
 * a service-account signing key. Kept under `<root>/pki/` so a restarted mesh keeps its tokens and
 * kubeconfigs valid; leaves are re-issued when the addresses they name change.
 */
import { generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import {
  type CertificateAuthority,
  type CertificateUsage,
  createCertificateAuthority,
  createLeafCertificate,
  exportCaKeyPem,
  loadCertificateAuthority,
  writePrivateFile,
} from "../../edge/certificates.ts";
import { apiServerNames, type ControlPlanePaths, type ControlPlaneSettings } from "./layout.ts";

export interface Credential {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface ControlPlanePki {
  readonly caPem: string;
  /** kubectl's identity: `kubernetes-admin` in `system:masters`. */
  readonly admin: Credential;
  /** The node agent's identity: `system:node:<name>` in `system:nodes` (the Node authorizer's subject). */
  readonly node: Credential;
  /** The node's service proxy: `system:kube-proxy` (bound to `system:node-proxier`: Services, Endpoints). */
  readonly kubeProxy: Credential;
  /** The kubelet API's serving certificate (kube-apiserver checks it with `--kubelet-certificate-authority`). */
  readonly kubeletServing: Credential;
}

interface LeafSpec {
  readonly file: string;
  readonly commonName: string;
  readonly organizations?: readonly string[];
  readonly usages: readonly CertificateUsage[];
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
}

const TEN_YEARS_HOURS = 10 * 365 * 24;
const YEAR_HOURS = 365 * 24;

function leafSpecs(settings: ControlPlaneSettings, kubernetesServiceIp: string): LeafSpec[] {
  const api = apiServerNames(settings, kubernetesServiceIp);
  return [
    { file: "apiserver", commonName: "kube-apiserver", usages: ["server"], ...api },
    { file: "apiserver-kubelet-client", commonName: "kube-apiserver-kubelet-client", usages: ["client"] },
    {
      file: "admin",
      commonName: "kubernetes-admin",
      organizations: ["system:masters"],
      usages: ["client"],
    },
    { file: "kube-controller-manager", commonName: "system:kube-controller-manager", usages: ["client"] },
    { file: "kube-scheduler", commonName: "system:kube-scheduler", usages: ["client"] },
    // What kube-proxy is on a cluster: the node agent watches Services and Endpoints as it.
    { file: "kube-proxy", commonName: "system:kube-proxy", usages: ["client"] },
    {
      file: "node",
      commonName: `system:node:${settings.nodeName}`,
      organizations: ["system:nodes"],
      usages: ["client"],
    },
    {
      file: "kubelet",
      commonName: settings.nodeName,
      usages: ["server"],
      dnsNames: [settings.nodeName],
      ipAddresses: [settings.address],
    },
  ];
}

async function loadOrCreateCa(paths: ControlPlanePaths, now: Date): Promise<CertificateAuthority> {
  if (existsSync(paths.ca.cert) && existsSync(paths.ca.key)) {
    return loadCertificateAuthority(readFileSync(paths.ca.cert, "utf8"), readFileSync(paths.ca.key, "utf8"));
  }
  const ca = await createCertificateAuthority({
    commonName: "osm-local-kubernetes-ca",
    now,
    validityHours: TEN_YEARS_HOURS,
  });
  writePrivateFile(paths.ca.key, await exportCaKeyPem(ca));
  writePrivateFile(paths.ca.cert, ca.certPem);
  return ca;
}

/** Creates what is missing (or no longer matches the settings) and returns the identities the daemon uses. */
export async function ensureControlPlanePki(
  paths: ControlPlanePaths,
  settings: ControlPlaneSettings,
  kubernetesServiceIp: string,
  now: Date,
): Promise<ControlPlanePki> {
  mkdirSync(paths.pki, { recursive: true, mode: 0o700 });
  const ca = await loadOrCreateCa(paths, now);
  if (!existsSync(paths.serviceAccountKey) || !existsSync(paths.serviceAccountPublicKey)) {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    writePrivateFile(paths.serviceAccountKey, privateKey.export({ type: "pkcs8", format: "pem" }).toString());
    writePrivateFile(
      paths.serviceAccountPublicKey,
      publicKey.export({ type: "spki", format: "pem" }).toString(),
    );
  }
  for (const spec of leafSpecs(settings, kubernetesServiceIp)) {
    const files = paths.leaf(spec.file);
    const fingerprintFile = `${files.cert}.spec`;
    const fingerprint = JSON.stringify(spec);
    const current =
      existsSync(files.cert) &&
      existsSync(files.key) &&
      existsSync(fingerprintFile) &&
      readFileSync(fingerprintFile, "utf8") === fingerprint;
    if (current) continue;
    const leaf = await createLeafCertificate(ca, {
      commonName: spec.commonName,
      organizations: spec.organizations ?? [],
      dnsNames: spec.dnsNames ?? [],
      ipAddresses: spec.ipAddresses ?? [],
      usages: spec.usages,
      now,
      validityHours: YEAR_HOURS,
    });
    writePrivateFile(files.key, leaf.keyPem);
    writePrivateFile(files.cert, leaf.certPem);
    writePrivateFile(fingerprintFile, fingerprint);
  }
  const read = (name: string): Credential => ({
    certPem: readFileSync(paths.leaf(name).cert, "utf8"),
    keyPem: readFileSync(paths.leaf(name).key, "utf8"),
  });
  return {
    caPem: ca.certPem,
    admin: read("admin"),
    node: read("node"),
    kubeProxy: read("kube-proxy"),
    kubeletServing: read("kubelet"),
  };
}
