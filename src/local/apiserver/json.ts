/**
 * Kubernetes objects as this server handles them: schemaless JSON, read field by field with optional
 * chaining. One loose type in one place, instead of a copy of every Kubernetes type.
 */
// biome-ignore lint/suspicious/noExplicitAny: objects are validated field by field where they are read
export type Obj = Record<string, any>;
