import "reflect-metadata";
/**
 * The server's identity and the credentials it issues, all kept in `<stateDir>/pki/` so kubeconfigs written
 * earlier stay valid across restarts: a self-signed CA, a serving certificate for 127.0.0.1/::1/localhost
 * (plus the configured hosts, e.g. the pod bridge's gateway addresses), the admin's client certificate
 * (`CN=kubernetes-admin, O=system:masters`, as kubeadm's admin.conf), random bearer tokens for the admin, the
 * node agent and the pods' shared token, and the service-account signing key. Keys are ECDSA P-256
 * (WebCrypto), certificates via @peculiar/x509.
 */
import { generateKeyPairSync, randomBytes, webcrypto } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";

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
  writeAtomic(path, `${value}\n`);
  return value;
}

const randomToken = () => randomBytes(32).toString("base64url");

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const YEAR_MS = 365 * 24 * 3600 * 1000;

function pemKey(der: ArrayBuffer): string {
  const b64 = Buffer.from(der)
    .toString("base64")
    .replace(/(.{64})/g, "$1\n");
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

function writeAtomic(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

/** Loads the identity from `<stateDir>/pki`, creating it on first use (or when `host` is not covered). */
export async function loadOrCreateIdentity(
  stateDir: string,
  host: string | readonly string[],
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
  const crypto = webcrypto;
  x509.cryptoProvider.set(crypto);
  const caKeys = (await crypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString("hex"),
    name: "CN=osmt-api-ca",
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 10 * YEAR_MS),
    signingAlgorithm: ALG,
    keys: caKeys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const serverKeys = (await crypto.subtle.generateKey(ALG, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
  const names = hosts.map((h) =>
    isIP(h) ? { type: "ip" as const, value: h } : { type: "dns" as const, value: h },
  );
  const leaf = async (
    subject: string,
    publicKey: webcrypto.CryptoKey,
    usages: number,
    extensions: x509.Extension[],
  ) =>
    x509.X509CertificateGenerator.create({
      serialNumber: randomBytes(8).toString("hex"),
      subject,
      issuer: ca.subject,
      notBefore: new Date(now - 3600_000),
      notAfter: new Date(now + 5 * YEAR_MS),
      signingAlgorithm: ALG,
      publicKey,
      signingKey: caKeys.privateKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(usages, true),
        ...extensions,
        await x509.AuthorityKeyIdentifierExtension.create(ca),
      ],
    });
  const cert = await leaf(
    "CN=osmt-api-server",
    serverKeys.publicKey,
    x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
    [
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names),
    ],
  );
  const adminKeys = (await crypto.subtle.generateKey(ALG, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
  const adminCert = await leaf(
    `CN=${ADMIN_USER}, O=${MASTERS_GROUP}`,
    adminKeys.publicKey,
    x509.KeyUsageFlags.digitalSignature,
    [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
  );
  const identity: ServerIdentity = {
    caPem: ca.toString("pem"),
    certPem: cert.toString("pem"),
    keyPem: pemKey(await crypto.subtle.exportKey("pkcs8", serverKeys.privateKey)),
    admin: {
      certPem: adminCert.toString("pem"),
      keyPem: pemKey(await crypto.subtle.exportKey("pkcs8", adminKeys.privateKey)),
    },
    ...secrets,
  };
  writeAtomic(files.adminKey, identity.admin.keyPem);
  writeAtomic(files.adminCert, identity.admin.certPem);
  writeAtomic(files.caKey, pemKey(await crypto.subtle.exportKey("pkcs8", caKeys.privateKey)));
  writeAtomic(files.ca, identity.caPem);
  writeAtomic(files.key, identity.keyPem);
  writeAtomic(files.cert, identity.certPem);
  writeAtomic(files.hosts, hosts.join(","));
  return identity;
}
