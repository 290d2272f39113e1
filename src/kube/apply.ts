/**
 * Applies install manifests through the Kubernetes API (client-node's generic object API, so it works
 * against any cluster and the embedded API server): create when absent, JSON merge patch when present,
 * and the MeshConfig created only when absent (values a user patched survive a re-install, as with OSM).
 */

import {
  type KubernetesObject,
  type KubernetesObjectApi,
  PatchStrategy,
  type V1APIGroupList,
} from "@kubernetes/client-node";
import { apiErrorCode } from "../edge/kube-client.ts";
import type { Manifest } from "./manifests.ts";

export const FIELD_MANAGER = "osm-install";

export type ApplyAction = "created" | "configured" | "unchanged" | "deleted" | "not found" | "skipped";

export interface ApplyEvent {
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string | undefined;
  readonly action: ApplyAction;
  readonly note?: string;
}

function header(m: Manifest): KubernetesObject & { metadata: { name: string } } {
  return {
    apiVersion: m.apiVersion,
    kind: m.kind,
    metadata: { name: m.metadata.name, ...(m.metadata.namespace ? { namespace: m.metadata.namespace } : {}) },
  };
}

async function readOrUndefined(
  client: KubernetesObjectApi,
  m: Manifest,
): Promise<KubernetesObject | undefined> {
  try {
    return await client.read(header(m));
  } catch (error) {
    if (apiErrorCode(error) === 404) return undefined;
    throw error;
  }
}

/** Create-or-update one object. */
export async function applyOne(client: KubernetesObjectApi, manifest: Manifest): Promise<ApplyEvent> {
  const base = { kind: manifest.kind, name: manifest.metadata.name, namespace: manifest.metadata.namespace };
  const existing = await readOrUndefined(client, manifest);
  if (!existing) {
    await client.create(manifest, undefined, undefined, FIELD_MANAGER);
    return { ...base, action: "created" };
  }
  const before = existing.metadata?.resourceVersion;
  const after: KubernetesObject = await client.patch(
    manifest,
    undefined,
    undefined,
    FIELD_MANAGER,
    undefined,
    PatchStrategy.MergePatch,
  );
  return { ...base, action: after.metadata?.resourceVersion === before ? "unchanged" : "configured" };
}

/** Creates the object only if absent; never touches an existing one. */
export async function createIfAbsent(client: KubernetesObjectApi, manifest: Manifest): Promise<ApplyEvent> {
  const base = { kind: manifest.kind, name: manifest.metadata.name, namespace: manifest.metadata.namespace };
  if (await readOrUndefined(client, manifest)) return { ...base, action: "unchanged" };
  try {
    await client.create(manifest, undefined, undefined, FIELD_MANAGER);
  } catch (error) {
    // Created meanwhile (the controller's bootstrap): theirs stays.
    if (apiErrorCode(error) === 409) return { ...base, action: "unchanged" };
    throw error;
  }
  return { ...base, action: "created" };
}

/** Deletes one object; absent is not an error. */
export async function deleteOne(client: KubernetesObjectApi, manifest: Manifest): Promise<ApplyEvent> {
  const base = { kind: manifest.kind, name: manifest.metadata.name, namespace: manifest.metadata.namespace };
  try {
    await client.delete(header(manifest), undefined, undefined, undefined, undefined, "Background");
    return { ...base, action: "deleted" };
  } catch (error) {
    if (apiErrorCode(error) === 404) return { ...base, action: "not found" };
    throw error;
  }
}

/** Polls until the CRD reports Established (the API serves its kind), bounded by `timeoutMs`. */
export async function waitForCrdEstablished(
  client: KubernetesObjectApi,
  name: string,
  timeoutMs: number,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const crd = (await client.read({
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name },
    })) as KubernetesObject & { status?: { conditions?: { type: string; status: string }[] } };
    if (crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) return true;
    if (Date.now() >= deadline) return false;
    await sleep(250);
  }
}

/** The group/versions the API server serves (`v1` plus every `/apis` group version), from discovery. */
export async function discoverGroupVersions(apis: {
  getAPIVersions(): Promise<V1APIGroupList>;
}): Promise<Set<string>> {
  const list = await apis.getAPIVersions();
  const served = new Set<string>(["v1"]);
  for (const group of list.groups) for (const v of group.versions) served.add(v.groupVersion);
  return served;
}
