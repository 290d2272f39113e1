import "reflect-metadata";
/**
 * The one certificate module: a self-signed CA and the serving and client certificates it signs, for the
 * admission webhooks, the embedded API server and the real control plane. Made with @peculiar/x509 on
 * WebCrypto (ECDSA P-256: fast to generate, accepted by kube-apiserver). Pure apart from key generation and
 * `writePrivateFile`; the clock is passed in so tests can age certificates.
 */
import { webcrypto } from "node:crypto";
import { renameSync, writeFileSync } from "node:fs";
import * as x509 from "@peculiar/x509";

type X509Crypto = NonNullable<Parameters<typeof x509.X509CertificateGenerator.create>[1]>;
type KeyPair = webcrypto.CryptoKeyPair;
const subtle = webcrypto.subtle;
/** WebCrypto as @peculiar/x509 types it (the DOM `Crypto`, which Node's implements). */
const crypto = webcrypto as unknown as X509Crypto;
const KEY_ALGORITHM = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGNING_ALGORITHM = { name: "ECDSA", hash: "SHA-256" } as const;

export interface CertificateAuthority {
  /** PEM of the CA certificate: what goes into a webhook configuration's `caBundle` (base64 of this). */
  readonly certPem: string;
  readonly notAfter: Date;
  readonly cert: x509.X509Certificate;
  readonly keys: KeyPair;
}

export interface ServingCertificate {
  readonly certPem: string;
  readonly keyPem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
}

const HOUR_MS = 3_600_000;

/** PEM text always ends with a newline, so bundles can be concatenated. */
function withNewline(text: string): string {
  return text.endsWith("\n") ? text : `${text}\n`;
}

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** Backdated a little so a node whose clock lags the webhook's does not reject a fresh certificate. */
const CLOCK_SKEW_MS = 5 * 60_000;

/** Creates a self-signed CA valid from `now` (minus skew) for `validityHours`. */
export async function createCertificateAuthority(options: {
  commonName: string;
  now: Date;
  validityHours: number;
}): Promise<CertificateAuthority> {
  const keys = (await subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"])) as KeyPair;
  const notBefore = new Date(options.now.getTime() - CLOCK_SKEW_MS);
  const notAfter = new Date(options.now.getTime() + options.validityHours * HOUR_MS);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      name: `CN=${options.commonName}`,
      notBefore,
      notAfter,
      keys,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { certPem: withNewline(cert.toString("pem")), notAfter, cert, keys };
}

export type CertificateUsage = "server" | "client";

export interface LeafCertificateOptions {
  readonly commonName: string;
  /** Subject organizations: Kubernetes reads a client certificate's O as the user's groups. */
  readonly organizations?: readonly string[];
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly usages: readonly CertificateUsage[];
  readonly now: Date;
  readonly validityHours: number;
}

/** Creates a certificate signed by `ca`, for serving (SANs), for client authentication (CN, O), or both. */
export async function createLeafCertificate(
  ca: CertificateAuthority,
  options: LeafCertificateOptions,
): Promise<ServingCertificate> {
  const keys = (await subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"])) as KeyPair;
  const notBefore = new Date(options.now.getTime() - CLOCK_SKEW_MS);
  const requested = options.now.getTime() + options.validityHours * HOUR_MS;
  // A leaf must not outlive its CA.
  const notAfter = new Date(Math.min(requested, ca.notAfter.getTime()));
  const names: x509.JsonGeneralName[] = [
    ...options.dnsNames.map((value) => ({ type: "dns" as const, value })),
    ...options.ipAddresses.map((value) => ({ type: "ip" as const, value })),
  ];
  const usages = options.usages.map((u) =>
    u === "server" ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
  );
  const subject = [`CN=${options.commonName}`, ...(options.organizations ?? []).map((o) => `O=${o}`)].join(
    ", ",
  );
  const cert = await x509.X509CertificateGenerator.create(
    {
      subject,
      issuer: ca.cert.subject,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: ca.keys.privateKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension(usages, false),
        ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names, false)] : []),
        await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  const keyDer = await subtle.exportKey("pkcs8", keys.privateKey);
  return {
    certPem: withNewline(cert.toString("pem")),
    keyPem: pem("PRIVATE KEY", keyDer),
    notBefore,
    notAfter,
    dnsNames: options.dnsNames,
    ipAddresses: options.ipAddresses,
  };
}

/** Creates a serving certificate for `dnsNames`/`ipAddresses`, signed by `ca`. */
export function createServingCertificate(
  ca: CertificateAuthority,
  options: {
    commonName: string;
    dnsNames: readonly string[];
    ipAddresses: readonly string[];
    now: Date;
    validityHours: number;
  },
): Promise<ServingCertificate> {
  return createLeafCertificate(ca, { ...options, usages: ["server"] });
}

/** The CA's private key as PKCS#8 PEM, to keep it across restarts. */
export async function exportCaKeyPem(ca: CertificateAuthority): Promise<string> {
  return pem("PRIVATE KEY", await subtle.exportKey("pkcs8", ca.keys.privateKey));
}

/** A CA kept as PEM files (certificate and PKCS#8 ECDSA P-256 key), loaded back. */
export async function loadCertificateAuthority(
  certPem: string,
  keyPem: string,
): Promise<CertificateAuthority> {
  const cert = new x509.X509Certificate(certPem);
  const der = Buffer.from(keyPem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""), "base64");
  const privateKey = await subtle.importKey("pkcs8", der, KEY_ALGORITHM, true, ["sign"]);
  const publicKey = await cert.publicKey.export(KEY_ALGORITHM, ["verify"], crypto);
  return { certPem: withNewline(certPem), notAfter: cert.notAfter, cert, keys: { privateKey, publicKey } };
}

/**
 * True when `notAfter` is within `renewBeforeFraction` of the validity period from its end (e.g. 0.2: renew
 * in the last fifth of its life), the usual rotation point (cert-manager renews at 2/3 of life by default).
 */
export function needsRotation(
  cert: { notBefore: Date; notAfter: Date },
  now: Date,
  renewBeforeFraction: number,
): boolean {
  const life = cert.notAfter.getTime() - cert.notBefore.getTime();
  return now.getTime() >= cert.notAfter.getTime() - life * renewBeforeFraction;
}

/** The DNS names kube-apiserver may use to reach `service` in `namespace` (it dials `<svc>.<ns>.svc`). */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.cluster.local`,
  ];
}

/** Writes a key or certificate readable by its owner only, atomically (a crash leaves the old file or the new). */
export function writePrivateFile(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}
