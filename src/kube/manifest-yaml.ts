/**
 * Renders manifests as multi-document YAML, the way `osm install --dry-run` prints them and deploy/ stores
 * them: RBAC rules carry their reason as a comment above the rule.
 */
import { Document, isMap, isSeq } from "yaml";
import { type Manifest, type PolicyRule, toApiObject } from "./manifests.ts";

/** One manifest as a YAML document (no leading `---`). */
export function renderManifestYaml(manifest: Manifest): string {
  const doc = new Document(toApiObject(manifest), { aliasDuplicateObjects: false });
  if (manifest.kind === "ClusterRole" || manifest.kind === "Role") {
    const reasons = (manifest["rules"] as PolicyRule[]).map((r) => r.why);
    const rules = doc.get("rules", true);
    if (isSeq(rules)) {
      rules.items.forEach((item, i) => {
        const why = reasons[i];
        if (why && isMap(item)) item.commentBefore = ` ${why}`;
      });
    }
  }
  return doc.toString({ lineWidth: 0 });
}

/** Every manifest, separated by `---`. */
export function renderManifestsYaml(manifests: readonly Manifest[], header?: string): string {
  const head = header ? `${header.replace(/^/gm, "# ")}\n` : "";
  return head + manifests.map((m) => `---\n${renderManifestYaml(m)}`).join("");
}
