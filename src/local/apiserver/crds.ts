/**
 * CustomResourceDefinitions: every stored CRD becomes resource types in the registry (one per served
 * version) the moment it is written, so a CR can be created right after its CRD; deleting a CRD deletes its
 * custom resources. Also loads `deploy/crds/*.yaml` at startup (created, or replaced when changed).
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { parseAllDocuments } from "yaml";
import type { KubeObject, Store } from "../store/store.ts";
import { type Api, internalContext, jsonEqual } from "./api.ts";
import { nowIso } from "./defaults.ts";
import type { Obj } from "./json.ts";
import { BUILTIN_TYPES, type ResourceRegistry, type ResourceType } from "./resources.ts";

const CRD_GR = "apiextensions.k8s.io/customresourcedefinitions";

/** The resource types one CRD defines. */
export function typesFromCrd(crd: Obj): ResourceType[] {
  const spec = crd.spec ?? {};
  const names = spec.names ?? {};
  const storage = (spec.versions ?? []).find((v: Obj) => v.storage)?.name ?? spec.versions?.[0]?.name ?? "";
  return (spec.versions ?? []).map((v: Obj) => ({
    group: spec.group,
    version: v.name,
    resource: names.plural,
    kind: names.kind,
    singular: names.singular ?? String(names.kind ?? "").toLowerCase(),
    namespaced: spec.scope !== "Cluster",
    shortNames: names.shortNames ?? [],
    categories: names.categories ?? [],
    subresources: [
      ...(v.subresources?.status ? ["status"] : []),
      ...(v.subresources?.scale ? ["scale"] : []),
    ],
    crd: {
      name: crd.metadata.name,
      schema: v.schema?.openAPIV3Schema,
      printerColumns: v.additionalPrinterColumns ?? [],
      storageVersion: storage,
      served: v.served !== false,
    },
  }));
}

/** The status a CRD gets once its names are accepted: Established, as clients wait for. */
export function crdStatus(crd: Obj): Obj {
  const t = nowIso();
  return {
    acceptedNames: crd.spec?.names ?? {},
    conditions: [
      {
        type: "NamesAccepted",
        status: "True",
        reason: "NoConflicts",
        message: "no conflicts found",
        lastTransitionTime: t,
      },
      {
        type: "Established",
        status: "True",
        reason: "InitialNamesAccepted",
        message: "the initial names have been accepted",
        lastTransitionTime: t,
      },
    ],
    storedVersions: (crd.spec?.versions ?? []).filter((v: Obj) => v.storage).map((v: Obj) => v.name),
  };
}

/** Keeps the registry in step with the stored CRDs; returns the stop function. */
export function watchCrds(store: Store, registry: ResourceRegistry, logger: Logger): () => void {
  const sync = () => {
    const types = store.list(CRD_GR).flatMap((crd) => {
      const builtin = BUILTIN_TYPES.some(
        (b) => b.group === (crd as Obj).spec?.group && b.resource === (crd as Obj).spec?.names?.plural,
      );
      return builtin ? [] : typesFromCrd(crd as Obj);
    });
    registry.setCustom(types);
  };
  sync();
  return store.subscribe((event) => {
    if (event.groupResource !== CRD_GR) return;
    sync();
    if (event.type === "DELETED") {
      const spec = (event.object as Obj).spec ?? {};
      const gr = `${spec.group}/${spec.names?.plural}`;
      for (const o of store.list(gr)) store.remove(gr, o.metadata.namespace ?? "", o.metadata.name);
      logger.info({ crd: event.object.metadata.name }, "CRD deleted with its custom resources");
    } else if (!(event.object as Obj).status?.conditions) {
      // Established at once: there is no name-conflict controller to wait for.
      queueMicrotask(() => {
        const current = store.get(CRD_GR, "", event.object.metadata.name) as Obj | undefined;
        if (current && !current.status?.conditions)
          store.put(CRD_GR, "", { ...current, status: crdStatus(current) } as unknown as KubeObject);
      });
    }
  });
}

/** Creates or updates the CRDs found in `dir` (`*.yaml`/`*.yml`, multi-document). */
export async function loadCrdFiles(api: Api, dir: string, logger: Logger): Promise<number> {
  if (!existsSync(dir)) return 0;
  const crdType = api.registry.find("apiextensions.k8s.io", "v1", "customresourcedefinitions");
  if (!crdType) return 0;
  let count = 0;
  for (const file of readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), "utf8"))) {
      const obj = doc.toJS() as Obj | null;
      if (obj?.kind !== "CustomResourceDefinition") continue;
      const ctx = internalContext();
      try {
        const existing = api.find(crdType, "", obj.metadata?.name);
        if (!existing) await api.create(crdType, "", obj, ctx);
        else if (!jsonEqual((existing as Obj).spec, obj.spec)) {
          await api.update(
            crdType,
            "",
            obj.metadata.name,
            { ...obj, metadata: { ...obj.metadata, resourceVersion: existing.metadata.resourceVersion } },
            ctx,
          );
        }
        count++;
      } catch (error) {
        logger.error({ err: error, file }, "cannot load CRD file");
      }
    }
  }
  return count;
}
