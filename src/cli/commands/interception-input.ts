/**
 * Shared input of `osm interception ...` and `osm explain`: a MeshConfig file plus pod annotations → the
 * effective traffic policy (config/ does the parsing, validation and OSM merge order).
 */
import {
  buildEffectivePolicy,
  defaultMeshConfig,
  type EffectiveTrafficPolicy,
  parseAnnotationFlags,
} from "../../config/index.ts";
import { ErrorCode, MeshError } from "../../errors.ts";
import { loadMeshConfigs, readInputFile } from "./meshconfig.ts";

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Loads `-f FILE` (exactly one MeshConfig; the chart defaults when no file) and merges the annotations. */
export function loadPolicy(
  filename: string | undefined,
  annotationFlags: readonly string[],
): EffectiveTrafficPolicy {
  const podAnnotations = parseAnnotationFlags(annotationFlags);
  if (filename === undefined) return buildEffectivePolicy(defaultMeshConfig(), { podAnnotations });
  const { text, source } = readInputFile(filename);
  const loaded = loadMeshConfigs(text, source);
  if (loaded.length !== 1) {
    throw new MeshError(
      ErrorCode.InvalidArgument,
      `${source} holds ${loaded.length} MeshConfig documents; exactly one is needed`,
      { hint: "split the file, or pass the document you mean on stdin with -f -" },
    );
  }
  return buildEffectivePolicy(loaded[0]!.config, { podAnnotations });
}
