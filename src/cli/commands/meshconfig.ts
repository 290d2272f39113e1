import { readFileSync } from "node:fs";
import type { Command } from "commander";
import {
  API_VERSION_V1ALPHA1,
  buildEffectivePolicy,
  type MeshConfig,
  parseMeshConfigDocuments,
  validateMeshConfig,
} from "../../config/index.ts";
import { ConfigError, type ConfigIssue, ErrorCode, formatConfigIssue, MeshError } from "../../errors.ts";

/** Reads `-f FILE` (or stdin for `-`) as text; a missing file is a clear error. */
export function readInputFile(file: string): { text: string; source: string } {
  const source = file === "-" ? "<stdin>" : file;
  try {
    return { text: readFileSync(file === "-" ? 0 : file, "utf8"), source };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : String(error);
    throw new MeshError(ErrorCode.NotFound, `cannot read ${source}: ${why}`, { cause: error });
  }
}

export function describeDocument(doc: unknown, index: number, count: number, kind = "MeshConfig"): string {
  const meta = (doc as { metadata?: { name?: unknown; namespace?: unknown } } | null)?.metadata;
  const name = typeof meta?.name === "string" ? meta.name : undefined;
  const namespace = typeof meta?.namespace === "string" ? meta.namespace : undefined;
  const position = count > 1 ? `document ${index + 1}` : "";
  const named = name ? `${kind} ${namespace ? `${namespace}/` : ""}${name}` : "";
  return [position, named].filter(Boolean).join(", ") || kind;
}

export const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

export interface LoadedMeshConfig {
  readonly config: MeshConfig;
  readonly label: string;
  readonly deprecated: boolean;
}

/**
 * Parses and validates every MeshConfig document of a file. Throws one MeshError (InvalidConfig) listing
 * every problem of every document, each as `path: "value" reason (hint: ...)`.
 */
export function loadMeshConfigs(text: string, source: string): LoadedMeshConfig[] {
  const docs = parseDocuments(
    text,
    source,
    "write a MeshConfig (apiVersion: config.openservicemesh.io/v1alpha2, kind: MeshConfig)",
  );
  const loaded: LoadedMeshConfig[] = [];
  const failures: { label: string; issues: readonly ConfigIssue[] }[] = [];
  docs.forEach((doc, index) => {
    const label = describeDocument(doc, index, docs.length);
    try {
      const deprecated = (doc as { apiVersion?: unknown } | null)?.apiVersion === API_VERSION_V1ALPHA1;
      loaded.push({ config: validateMeshConfig(doc), label, deprecated });
    } catch (error) {
      if (error instanceof ConfigError) failures.push({ label, issues: error.issues });
      else throw error;
    }
  });
  if (failures.length > 0) throw invalid(source, failures, docs.length > 1);
  return loaded;
}

/**
 * The documents of a file (a `List` expanded into its items); malformed YAML or no document at all is one
 * MeshError naming the place (`hint`: what to write instead of nothing).
 */
export function parseDocuments(text: string, source: string, hint: string): unknown[] {
  let docs: unknown[];
  try {
    docs = parseMeshConfigDocuments(text, source);
  } catch (error) {
    if (error instanceof ConfigError) throw invalid(source, [{ label: "", issues: error.issues }], false);
    throw error;
  }
  if (docs.length === 0)
    throw new MeshError(ErrorCode.InvalidConfig, `${source} holds no document`, { hint });
  return docs.flatMap(expandList);
}

/** `kubectl get meshconfig -o yaml` prints a `List` (or `MeshConfigList`, `TrafficTargetList`): check each item. */
function expandList(doc: unknown): unknown[] {
  const d = doc as { kind?: unknown; items?: unknown } | null;
  if (typeof d?.kind === "string" && d.kind.endsWith("List") && Array.isArray(d.items)) return d.items;
  return [doc];
}

/** One MeshError listing every problem of every document, labelled by document when there are several. */
export function invalid(
  source: string,
  failures: { label: string; issues: readonly ConfigIssue[] }[],
  labelled: boolean,
): MeshError {
  const total = failures.reduce((n, f) => n + f.issues.length, 0);
  const lines = [`${source} is invalid (${plural(total, "problem")}):`];
  for (const failure of failures) {
    const indent = labelled ? "    " : "  ";
    if (labelled) lines.push(`  ${failure.label}:`);
    for (const issue of failure.issues) lines.push(`${indent}${formatConfigIssue(issue)}`);
  }
  return new MeshError(ErrorCode.InvalidConfig, lines.join("\n"));
}

const DEPRECATION = `${API_VERSION_V1ALPHA1} MeshConfig is deprecated; use config.openservicemesh.io/v1alpha2 MeshConfig`;

/** Registers `osm meshconfig validate`. */
export function registerMeshConfig(program: Command): void {
  const meshconfig = program
    .command("meshconfig")
    .description("work with MeshConfig resources (config.openservicemesh.io/v1alpha2)");
  meshconfig
    .command("validate")
    .description(
      "validate MeshConfig documents (YAML or JSON, one or many) and print every problem; exit 1 if any",
    )
    .requiredOption("-f, --filename <file>", "MeshConfig file, or - for stdin")
    .action((options: { filename: string }) => {
      const { text, source } = readInputFile(options.filename);
      const loaded = loadMeshConfigs(text, source);
      for (const { config, label, deprecated } of loaded) {
        if (deprecated) process.stderr.write(`Warning: ${DEPRECATION}\n`);
        process.stdout.write(`${source}: ${label} is valid (${config.apiVersion})\n`);
        const { warnings } = buildEffectivePolicy(config);
        for (const w of warnings) process.stdout.write(`  warning [${w.code}]: ${w.message}\n`);
      }
    });
}
