/**
 * RFC 6902 operations that add containers, labels and annotations to a pod, correct whether or not the
 * target arrays and maps exist yet (`add` to a missing parent fails, so a missing map is added whole).
 */
import type { V1Container, V1Pod, V1Volume } from "@kubernetes/client-node";
import type { JsonPatchOperation } from "./types.ts";

/** RFC 6901: `~` → `~0`, `/` → `~1`. */
export function escapeJsonPointer(token: string): string {
  return token.replaceAll("~", "~0").replaceAll("/", "~1");
}

/** Appends `containers` to `spec.<field>`, after whatever is there (OSM appends). */
export function appendContainers(
  pod: V1Pod,
  field: "initContainers" | "containers",
  containers: readonly V1Container[],
): JsonPatchOperation[] {
  if (containers.length === 0) return [];
  const existing = pod.spec?.[field];
  if (!existing || existing.length === 0) {
    return [{ op: "add", path: `/spec/${field}`, value: [...containers] }];
  }
  return containers.map((c) => ({ op: "add" as const, path: `/spec/${field}/-`, value: c }));
}

/** Appends volumes to the pod spec (creating the list when absent). */
export function appendVolumes(pod: V1Pod, volumes: readonly V1Volume[]): JsonPatchOperation[] {
  if (volumes.length === 0) return [];
  const existing = pod.spec?.volumes;
  if (!existing || existing.length === 0) return [{ op: "add", path: "/spec/volumes", value: [...volumes] }];
  return volumes.map((v) => ({ op: "add" as const, path: "/spec/volumes/-", value: v }));
}

/** Sets `metadata.<field>[key] = value` for each entry (overwriting an existing key: `add` replaces). */
export function setMetadataEntries(
  pod: V1Pod,
  field: "labels" | "annotations",
  entries: Readonly<Record<string, string>>,
): JsonPatchOperation[] {
  const keys = Object.keys(entries);
  if (keys.length === 0) return [];
  if (!pod.metadata?.[field]) {
    return [{ op: "add", path: `/metadata/${field}`, value: { ...entries } }];
  }
  return keys.map((key) => ({
    op: "add" as const,
    path: `/metadata/${field}/${escapeJsonPointer(key)}`,
    value: entries[key],
  }));
}
