/** The HTTP status of a client-node error (undefined for a network error): one reading for every API caller. */
export function statusCode(error: unknown): number | undefined {
  const e = error as { code?: unknown; statusCode?: unknown };
  return typeof e.code === "number" ? e.code : typeof e.statusCode === "number" ? e.statusCode : undefined;
}
