/** The SMI and policy objects of a cluster, as the guide's commands read them (explain, check-pods). */
import {
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from "@kubernetes/client-node";
import { type SmiKind, validObjects } from "../smi/validate.ts";

/**
 * The valid objects of `kind` in the cluster (an invalid one allows nothing, as in the controller); none when
 * the cluster does not serve the kind (its CRD not installed: kube-apiserver answers 404).
 */
export async function listPolicyObjects(kc: KubeConfig, kind: SmiKind): Promise<unknown[]> {
  const [group, version] = kind.apiVersion.split("/") as [string, string];
  try {
    const list = (await kc.makeApiClient(CustomObjectsApi).listClusterCustomObject({
      group,
      version,
      plural: kind.plural,
    })) as KubernetesListObject<KubernetesObject>;
    return validObjects(list.items, kind.kind).valid;
  } catch (error) {
    if ((error as { code?: unknown }).code === 404) return [];
    throw error;
  }
}
