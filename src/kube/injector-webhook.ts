/**
 * The injector process's webhook side, composed: bootstrap a self-signed CA and serving certificate, publish
 * the CA into the webhook configurations, serve `/mutate-pod-creation`, `/validate-meshconfig` and `/validate-smi` over HTTPS,
 * and rotate before expiry (serving certificate from the same CA; CA renewal publishes new+old CA first,
 * so an API server holding either bundle keeps trusting us).
 */
import type { Logger } from "pino";
import { INJECTOR_WEBHOOK_PATH, MESHCONFIG_WEBHOOK_PATH, SMI_WEBHOOK_PATH } from "../constants.ts";
import {
  type CertificateAuthority,
  createCertificateAuthority,
  createServingCertificate,
  needsRotation,
  type ServingCertificate,
} from "../edge/certificates.ts";
import type { InjectorOptions } from "../injector/index.ts";
import type { CaBundlePublisher } from "./ca-bundle.ts";
import { createMeshConfigValidationHandler } from "./meshconfig-webhook.ts";
import { createWebhookMetrics, type WebhookMetrics } from "./metrics.ts";
import { type ClusterReader, createPodInjectionHandler } from "./pod-webhook.ts";
import { createSmiValidationHandler } from "./smi-webhook.ts";
import { type AdmissionHandler, startWebhookServer } from "./webhook-server.ts";

export interface InjectorWebhookOptions {
  readonly host: string;
  readonly port: number;
  readonly injector: InjectorOptions;
  readonly reader: ClusterReader;
  /** Absent: the caller distributes the CA itself (tests read `caPem()`). */
  readonly publisher?: CaBundlePublisher;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly caValidityHours: number;
  readonly certValidityHours: number;
  /** Renew in the last fraction of a certificate's life (default 1/3, as cert-manager's 2/3 point). */
  readonly renewBeforeFraction?: number;
  /** How often to check for rotation (default 60 s). */
  readonly rotationCheckMs?: number;
  readonly logger: Logger;
  readonly now?: () => Date;
  readonly metrics?: WebhookMetrics;
}

export interface RunningInjectorWebhook {
  readonly port: number;
  /** The CA bundle currently published (PEM; one or two certificates during a CA rollover). */
  caPem(): string;
  /** The serving certificate currently in use. */
  serving(): ServingCertificate;
  /** Runs one rotation check now (the timer calls this). */
  checkRotation(): Promise<void>;
  close(): Promise<void>;
}

const PUBLISH_RETRY_MS = 2_000;

export async function startInjectorWebhook(options: InjectorWebhookOptions): Promise<RunningInjectorWebhook> {
  const log = options.logger;
  const now = options.now ?? (() => new Date());
  const renew = options.renewBeforeFraction ?? 1 / 3;
  const commonName = options.dnsNames[0] ?? "osm-injector";

  const issueCa = () =>
    createCertificateAuthority({
      // Distinct subjects: during a rollover both CAs are trusted, and verifiers look issuers up by name.
      commonName: `osm-ts webhook CA ${now().toISOString()}`,
      now: now(),
      validityHours: options.caValidityHours,
    });
  const issueServing = (ca: CertificateAuthority) =>
    createServingCertificate(ca, {
      commonName,
      dnsNames: options.dnsNames,
      ipAddresses: options.ipAddresses,
      now: now(),
      validityHours: options.certValidityHours,
    });

  const metrics = options.metrics ?? createWebhookMetrics();
  const setExpiry = () =>
    metrics.certificateExpirySeconds.set((serving.notAfter.getTime() - now().getTime()) / 1000);
  let ca = await issueCa();
  let previousCa: CertificateAuthority | undefined;
  let serving = await issueServing(ca);
  let published = options.publisher === undefined;
  let closed = false;
  let retryTimer: NodeJS.Timeout | undefined;

  const bundlePem = () =>
    previousCa && previousCa.notAfter > now() ? ca.certPem + previousCa.certPem : ca.certPem;

  async function publish(): Promise<void> {
    if (!options.publisher) return;
    await options.publisher.publish(Buffer.from(bundlePem()).toString("base64"));
    published = true;
  }

  /** First publication: retried until it works, so the server can start before the configurations exist. */
  function publishWithRetry(): void {
    publish().catch((error: unknown) => {
      log.warn({ err: error }, "could not publish the caBundle yet; retrying");
      if (!closed) retryTimer = setTimeout(publishWithRetry, PUBLISH_RETRY_MS);
    });
  }

  const handlers = new Map<string, AdmissionHandler>([
    [
      INJECTOR_WEBHOOK_PATH,
      createPodInjectionHandler({ reader: options.reader, options: options.injector, logger: log }),
    ],
    [MESHCONFIG_WEBHOOK_PATH, createMeshConfigValidationHandler()],
    [SMI_WEBHOOK_PATH, createSmiValidationHandler()],
  ]);
  const server = await startWebhookServer({
    host: options.host,
    port: options.port,
    certPem: serving.certPem,
    keyPem: serving.keyPem,
    handlers,
    logger: log,
    ready: () => published,
    metrics,
  });
  setExpiry();
  publishWithRetry();

  async function checkRotation(): Promise<void> {
    const t = now();
    const caCert = { notBefore: ca.cert.notBefore, notAfter: ca.notAfter };
    if (needsRotation(caCert, t, renew)) {
      previousCa = ca;
      ca = await issueCa();
      // Trust both CAs before serving from the new one.
      await publish();
      serving = await issueServing(ca);
      server.setCertificate(serving.certPem, serving.keyPem);
      metrics.rotations.inc({ what: "ca" });
      log.info({ notAfter: ca.notAfter.toISOString() }, "webhook CA rotated");
      setExpiry();
      return;
    }
    if (needsRotation(serving, t, renew)) {
      serving = await issueServing(ca);
      server.setCertificate(serving.certPem, serving.keyPem);
      metrics.rotations.inc({ what: "serving" });
      log.info({ notAfter: serving.notAfter.toISOString() }, "webhook serving certificate rotated");
    }
    setExpiry();
  }

  const rotationTimer = setInterval(() => {
    checkRotation().catch((error: unknown) => log.error({ err: error }, "certificate rotation failed"));
  }, options.rotationCheckMs ?? 60_000);

  return {
    port: server.port,
    caPem: bundlePem,
    serving: () => serving,
    checkRotation,
    async close() {
      closed = true;
      clearInterval(rotationTimer);
      if (retryTimer) clearTimeout(retryTimer);
      await server.close();
    },
  };
}
