/**
 * The one errors module. Every error the project raises on purpose is a MeshError with a stable `code`,
 * so callers (the CLI, the webhooks, tests) branch on the code, never on the message text.
 */

/** Stable error codes. Add new ones here; never rename one that has shipped. */
export const ErrorCode = {
  InvalidConfig: "OSM_ERR_INVALID_CONFIG",
  InvalidAnnotation: "OSM_ERR_INVALID_ANNOTATION",
  InvalidArgument: "OSM_ERR_INVALID_ARGUMENT",
  NotFound: "OSM_ERR_NOT_FOUND",
  Conflict: "OSM_ERR_CONFLICT",
  NotRoot: "OSM_ERR_NOT_ROOT",
  MissingTool: "OSM_ERR_MISSING_TOOL",
  ApplyFailed: "OSM_ERR_APPLY_FAILED",
  VerifyFailed: "OSM_ERR_VERIFY_FAILED",
  ProbeFailed: "OSM_ERR_PROBE_FAILED",
  Unavailable: "OSM_ERR_UNAVAILABLE",
  Forbidden: "OSM_ERR_FORBIDDEN",
  Internal: "OSM_ERR_INTERNAL",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface MeshErrorOptions {
  cause?: unknown;
  /** What the user can do about it; printed after the message. */
  hint?: string;
}

export class MeshError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: MeshErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "MeshError";
    this.code = code;
    this.hint = options.hint;
  }
}

/** One problem found while validating input: where, what was written, why it is wrong, what to do. */
export interface ConfigIssue {
  /** Field path as kubectl prints it, e.g. `spec.traffic.outboundIPRangeExclusionList[0]`, or an annotation key. */
  path: string;
  /** The value exactly as the user wrote it. */
  value: unknown;
  /** Why it is wrong, phrased to follow the value: `is not a valid CIDR: prefix length 33 exceeds 32 for IPv4`. */
  reason: string;
  hint?: string;
}

/** Renders one issue as `path: "value" reason (hint)`. */
export function formatConfigIssue(issue: ConfigIssue): string {
  const value = issue.value === undefined ? "<missing>" : JSON.stringify(issue.value);
  const hint = issue.hint ? ` (hint: ${issue.hint})` : "";
  return `${issue.path}: ${value} ${issue.reason}${hint}`;
}

/** Validation failed: carries every issue found, not just the first. */
export class ConfigError extends MeshError {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[], options: MeshErrorOptions = {}) {
    super(ErrorCode.InvalidConfig, issues.map(formatConfigIssue).join("\n"), options);
    this.name = "ConfigError";
    this.issues = issues;
  }
}

export function isMeshError(error: unknown): error is MeshError {
  return error instanceof MeshError;
}
