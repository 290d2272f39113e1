/**
 * The server's identity and the credentials it issues, all kept in `<stateDir>/pki/` so kubeconfigs written
 * earlier stay valid across restarts: a self-signed CA, a serving certificate for 127.0.0.1/::1/localhost
 * (plus the configured hosts, e.g. the pod bridge's gateway addresses), the admin's client certificate
 * (`CN=kubernetes-admin, O=system:masters`, as kubeadm's admin.conf), random bearer tokens for the admin, the
 * node agent and the pods' shared token, and the service-account signing key. The certificates come from
 * `src/edge/certificates.ts`, as the webhooks' and the real control plane's do.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import {
  createCertificateAuthority,
  createLeafCertificate,
  exportCaKeyPem,
  writePrivateFile,
} from "../../edge/certificates.ts";
export interface ServerIdentity {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
  /** The admin's bearer token (`kubernetes-admin`, group `system:masters`). */
  readonly token: string;
  /** The admin's client certificate, signed by the CA. */
  readonly admin: { readonly certPem: string; readonly keyPem: string };
  /** The node agent's bearer token (`system:node:<node>`, group `system:nodes`). */
  readonly nodeToken: string;
  /** The token every pod shares until the node agent mints each pod its own (see `authn.ts`). */
  readonly podToken: string;
  /** PKCS#8 PEM of the key that signs service-account tokens (ES256). */
  readonly serviceAccountKeyPem: string;
}

export const ADMIN_USER = "kubernetes-admin";
export const MASTERS_GROUP = "system:masters";

function loadOrCreateSecret(path: string, create: () => string): string {
  if (existsSync(path)) return readFileSync(path, "utf8").trim();
  const value = create();
  writePrivateFile(path, `${value}\n`);
  return value;
}

const randomToken = () => randomBytes(32).toString("base64url");

const YEAR_HOURS = 365 * 24;

/** Loads the identity from `<stateDir>/pki`, creating it on first use (or when `host` is not covered). */
export async function loadOrCreateIdentity(
  stateDir: string,
  host: string | readonly string[],
  now: Date = new Date(),
): Promise<ServerIdentity> {
  const dir = join(stateDir, "pki");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files = {
    ca: join(dir, "ca.crt"),
    caKey: join(dir, "ca.key"),
    cert: join(dir, "server.crt"),
    key: join(dir, "server.key"),
    token: join(dir, "token"),
    hosts: join(dir, "hosts"),
    adminCert: join(dir, "admin.crt"),
    adminKey: join(dir, "admin.key"),
  };
  const hosts = [
    ...new Set(["127.0.0.1", "::1", "localhost", ...(typeof host === "string" ? [host] : host)]),
  ].sort();
  const secrets = {
    token: loadOrCreateSecret(files.token, randomToken),
    nodeToken: loadOrCreateSecret(join(dir, "node-token"), randomToken),
    podToken: loadOrCreateSecret(join(dir, "pod-token"), randomToken),
    serviceAccountKeyPem: `${loadOrCreateSecret(join(dir, "sa.key"), () =>
      generateKeyPairSync("ec", { namedCurve: "P-256" })
        .privateKey.export({ type: "pkcs8", format: "pem" })
        .toString()
        .trim(),
    )}\n`,
  };
  const haveAll = [
    files.ca,
    files.caKey,
    files.cert,
    files.key,
    files.hosts,
    files.adminCert,
    files.adminKey,
  ].every(existsSync);
  if (haveAll && readFileSync(files.hosts, "utf8") === hosts.join(",")) {
    return {
      caPem: readFileSync(files.ca, "utf8"),
      certPem: readFileSync(files.cert, "utf8"),
      keyPem: readFileSync(files.key, "utf8"),
      admin: { certPem: readFileSync(files.adminCert, "utf8"), keyPem: readFileSync(files.adminKey, "utf8") },
      ...secrets,
    };
  }
  const ca = await createCertificateAuthority({
    commonName: "osmt-api-ca",
    now,
    validityHours: 10 * YEAR_HOURS,
  });
  const server = await createLeafCertificate(ca, {
    commonName: "osmt-api-server",
    dnsNames: hosts.filter((h) => isIP(h) === 0),
    ipAddresses: hosts.filter((h) => isIP(h) !== 0),
    usages: ["server"],
    now,
    validityHours: 5 * YEAR_HOURS,
  });
  const admin = await createLeafCertificate(ca, {
    commonName: ADMIN_USER,
    organizations: [MASTERS_GROUP],
    dnsNames: [],
    ipAddresses: [],
    usages: ["client"],
    now,
    validityHours: 5 * YEAR_HOURS,
  });
  const identity: ServerIdentity = {
    caPem: ca.certPem,
    certPem: server.certPem,
    keyPem: server.keyPem,
    admin: { certPem: admin.certPem, keyPem: admin.keyPem },
    ...secrets,
  };
  writePrivateFile(files.adminKey, identity.admin.keyPem);
  writePrivateFile(files.adminCert, identity.admin.certPem);
  writePrivateFile(files.caKey, await exportCaKeyPem(ca));
  writePrivateFile(files.ca, identity.caPem);
  writePrivateFile(files.key, identity.keyPem);
  writePrivateFile(files.cert, identity.certPem);
  writePrivateFile(files.hosts, hosts.join(","));
  return identity;
}
