/**
 * Writes or merges a kubeconfig context for the embedded server, as kind does: cluster, user and context
 * entries named after the context are replaced, everything else in the file is kept; `setCurrent` makes it
 * the current context. Written as temp file + rename, mode 0600.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { parse, stringify } from "yaml";

export interface KubeconfigOptions {
  readonly path: string;
  readonly context: string;
  readonly server: string;
  readonly caPem: string;
  /** The user's credential: a bearer token, or a client certificate (kube-apiserver's CN/O identity). */
  readonly token?: string;
  readonly clientCertificate?: { readonly certPem: string; readonly keyPem: string };
  readonly setCurrent: boolean;
}

function userEntry(options: KubeconfigOptions): Record<string, string> {
  if (options.clientCertificate) {
    return {
      "client-certificate-data": Buffer.from(options.clientCertificate.certPem).toString("base64"),
      "client-key-data": Buffer.from(options.clientCertificate.keyPem).toString("base64"),
    };
  }
  return { token: options.token ?? "" };
}

type Named = { name: string; [key: string]: unknown };

function upsert(list: unknown, entry: Named): Named[] {
  const items = Array.isArray(list) ? (list as Named[]).filter((e) => e && e.name !== entry.name) : [];
  return [...items, entry];
}

export function writeKubeconfig(options: KubeconfigOptions): void {
  let doc: Record<string, unknown> = {};
  if (existsSync(options.path)) {
    const parsed = parse(readFileSync(options.path, "utf8")) as unknown;
    if (parsed && typeof parsed === "object") doc = parsed as Record<string, unknown>;
  }
  doc.apiVersion = "v1";
  doc.kind = "Config";
  doc.preferences ??= {};
  doc.clusters = upsert(doc.clusters, {
    name: options.context,
    cluster: {
      server: options.server,
      "certificate-authority-data": Buffer.from(options.caPem).toString("base64"),
    },
  });
  doc.users = upsert(doc.users, { name: options.context, user: userEntry(options) });
  doc.contexts = upsert(doc.contexts, {
    name: options.context,
    context: { cluster: options.context, user: options.context },
  });
  if (options.setCurrent || !doc["current-context"]) doc["current-context"] = options.context;
  mkdirSync(dirname(options.path), { recursive: true });
  const tmp = `${options.path}.osmt-tmp`;
  writeFileSync(tmp, stringify(doc), { mode: 0o600 });
  renameSync(tmp, options.path);
}

/** Removes the context (and its cluster and user) from a kubeconfig, for `osm mesh down`. */
export function removeKubeconfigContext(path: string, context: string): void {
  if (!existsSync(path)) return;
  const doc = parse(readFileSync(path, "utf8")) as Record<string, unknown> | null;
  if (!doc) return;
  const drop = (list: unknown) =>
    Array.isArray(list) ? (list as Named[]).filter((e) => e?.name !== context) : list;
  doc.clusters = drop(doc.clusters);
  doc.users = drop(doc.users);
  doc.contexts = drop(doc.contexts);
  if (doc["current-context"] === context) doc["current-context"] = "";
  const tmp = `${path}.osmt-tmp`;
  writeFileSync(tmp, stringify(doc), { mode: 0o600 });
  renameSync(tmp, path);
}
