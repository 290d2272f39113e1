/** Helpers shared by the controllers: owner references, pod readiness, type lookup. */
import { createHash } from "node:crypto";
import type { Api } from "../apiserver/api.ts";
import type { Obj } from "../apiserver/json.ts";
import type { ResourceType } from "../apiserver/resources.ts";
import type { KubeObject } from "../store/store.ts";

export type { Obj };

export function typeOf(api: Api, group: string, resource: string): ResourceType {
  const t = api.registry.find(group, "v1", resource);
  if (!t) throw new Error(`unknown resource ${group}/${resource}`);
  return t;
}

export function controllerOf(o: KubeObject): Obj | undefined {
  return ((o.metadata as Obj).ownerReferences ?? []).find((r: Obj) => r.controller);
}

export function ownedBy(o: KubeObject, uid: string): boolean {
  return ((o.metadata as Obj).ownerReferences ?? []).some((r: Obj) => r.uid === uid);
}

export function ownerReference(owner: KubeObject, apiVersion: string, kind: string): Obj {
  return {
    apiVersion,
    kind,
    name: owner.metadata.name,
    uid: (owner.metadata as Obj).uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

export function isPodReady(pod: KubeObject): boolean {
  return ((pod as Obj).status?.conditions ?? []).some((c: Obj) => c.type === "Ready" && c.status === "True");
}

/** Active: not being deleted and not finished (client-go's FilterActivePods). */
export function isPodActive(pod: KubeObject): boolean {
  const phase = (pod as Obj).status?.phase;
  return !(pod.metadata as Obj).deletionTimestamp && phase !== "Succeeded" && phase !== "Failed";
}

/** JSON with object keys sorted, so equal templates hash alike whatever their key order. */
function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, value: unknown) =>
    value && typeof value === "object" && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : value,
  );
}

const SAFE = "bcdfghjklmnpqrstvwxz2456789";

/** The pod-template-hash: a hash of the template in Kubernetes' safe alphabet (10 characters). */
export function templateHash(template: unknown, collisionCount = 0): string {
  const digest = createHash("sha256").update(stableJson(template)).update(String(collisionCount)).digest();
  let out = "";
  for (let i = 0; i < 10; i++) out += SAFE[(digest[i] ?? 0) % SAFE.length];
  return out;
}
