import { type Command, Option } from "commander";
import { stringify } from "yaml";
import {
  buildEffectivePolicy,
  type CidrEntry,
  describeProvenance,
  type EffectiveTrafficPolicy,
  type PortEntry,
  parseAnnotationFlags,
  policyHash,
} from "../../config/index.ts";
import { ConfigError, type ConfigIssue, ErrorCode, MeshError } from "../../errors.ts";
import { smiWarnings, type ValidSmiObject, validateSmiObject } from "../../smi/validate.ts";
import { describeDocument, invalid, loadMeshConfigs, parseDocuments, readInputFile } from "./meshconfig.ts";

/** Left-aligned columns, two spaces apart (kubectl's tabwriter look). */
function table(header: readonly string[], rows: readonly (readonly string[])[], indent = "  "): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    `${indent}${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")}`;
  return [line(header), ...rows.map(line)];
}

function cidrRows(v4: readonly CidrEntry[], v6: readonly CidrEntry[]): string[][] {
  return [...v4, ...v6].map((e) => {
    const sources = e.sources ?? [{ given: e.given, provenance: e.provenance }];
    const given = sources.map((s) => s.given).join(", ");
    const from = [...new Set(sources.map((s) => describeProvenance(s.provenance)))].join("; ");
    return [`IPv${e.cidr.family}`, e.cidr.toString(), given, from];
  });
}

function portRows(ports: readonly PortEntry[]): string[][] {
  return ports.map((p) => [String(p.port), describeProvenance(p.provenance)]);
}

/** What the policy does, in one or two sentences. */
function summary(policy: EffectiveTrafficPolicy): string[] {
  const c = policy.canonical;
  const excluded = [...c.outboundIPRangeExclusions.v4, ...c.outboundIPRangeExclusions.v6].map((e) =>
    e.cidr.toString(),
  );
  const included = [...c.outboundIPRangeInclusions.v4, ...c.outboundIPRangeInclusions.v6].map((e) =>
    e.cidr.toString(),
  );
  const ports = c.outboundPortExclusions.map((p) => p.port);
  const lines: string[] = [];
  const bypass = [
    excluded.length > 0 ? `to ${excluded.join(", ")}` : "",
    ports.length > 0 ? `to port${ports.length > 1 ? "s" : ""} ${ports.join(", ")}` : "",
  ].filter(Boolean);
  if (bypass.length > 0)
    lines.push(`Outbound TCP ${bypass.join(" and ")} goes direct, bypassing the sidecar.`);
  const other = bypass.length > 0;
  const intercepted =
    included.length > 0
      ? `${other ? "Other outbound" : "Outbound"} TCP to ${included.join(", ")}`
      : `All ${other ? "other " : ""}outbound TCP`;
  const egress = policy.enableEgress
    ? "which passes non-mesh destinations through (egress enabled)"
    : "which refuses non-mesh destinations (egress disabled)";
  lines.push(`${intercepted} goes through the sidecar, ${egress}.`);
  if (included.length > 0)
    lines.push("Outbound TCP to every other destination goes direct (inclusion list).");
  return lines;
}

/** What `-o json|yaml` prints: the policy with its as-given lists as written (what OSM's injector passes on), and its hash. */
function policyDocument(policy: EffectiveTrafficPolicy): unknown {
  const given = policy.asGiven;
  return {
    ...policy,
    asGiven: {
      outboundIPRangeExclusionList: given.outboundIPRangeExclusionList.map((e) => e.given),
      outboundIPRangeInclusionList: given.outboundIPRangeInclusionList.map((e) => e.given),
      outboundPortExclusionList: given.outboundPortExclusionList.map((e) => e.port),
      inboundPortExclusionList: given.inboundPortExclusionList.map((e) => e.port),
      networkInterfaceExclusionList: given.networkInterfaceExclusionList,
    },
    policyHash: policyHash(policy),
  };
}

/** The human-readable rendering of `osm policy show`. */
export function renderPolicyTable(
  policy: EffectiveTrafficPolicy,
  context: { source: string; annotations: Readonly<Record<string, string>> },
): string {
  const c = policy.canonical;
  const out: string[] = [];
  const annotationCount = Object.keys(context.annotations).length;
  out.push(
    `Effective traffic policy for a pod (MeshConfig ${context.source}, ${
      annotationCount === 0
        ? "no pod annotations"
        : `${annotationCount} pod annotation${annotationCount > 1 ? "s" : ""}`
    })`,
  );
  out.push("");
  out.push(
    ...table(
      ["SETTING", "VALUE", "APPLIES"],
      [
        ["egress", policy.enableEgress ? "enabled" : "disabled", "live (sidecar config, no restart)"],
        ["localProxyMode", policy.localProxyMode, "at pod start (init container)"],
        ["policy hash", policyHash(policy).slice(0, 16), "changes when interception changes"],
      ],
      "",
    ),
  );
  const empty: string[] = [];
  const section = (title: string, note: string, rows: string[][], header: string[]) => {
    if (rows.length === 0) {
      empty.push(title.charAt(0).toLowerCase() + title.slice(1));
      return;
    }
    out.push("");
    out.push(`${title} (${note}):`);
    out.push(...table(header, rows));
  };
  const cidrHeader = ["FAMILY", "CIDR", "AS GIVEN", "FROM"];
  section(
    "Outbound IP range exclusions",
    "bypass the sidecar",
    cidrRows(c.outboundIPRangeExclusions.v4, c.outboundIPRangeExclusions.v6),
    cidrHeader,
  );
  section(
    "Outbound IP range inclusions",
    "only these are intercepted",
    cidrRows(c.outboundIPRangeInclusions.v4, c.outboundIPRangeInclusions.v6),
    cidrHeader,
  );
  section("Outbound port exclusions", "bypass the sidecar", portRows(c.outboundPortExclusions), [
    "PORT",
    "FROM",
  ]);
  section("Inbound port exclusions", "reach the app directly", portRows(c.inboundPortExclusions), [
    "PORT",
    "FROM",
  ]);
  section(
    "Network interface exclusions",
    "never intercepted",
    c.networkInterfaceExclusions.map((i) => [i, "MeshConfig spec.traffic.networkInterfaceExclusionList"]),
    ["INTERFACE", "FROM"],
  );
  if (empty.length > 0) {
    out.push("");
    out.push(`None set: ${empty.join(", ")}.`);
  }
  out.push("");
  out.push("In short:");
  for (const line of summary(policy)) out.push(`  ${line}`);
  out.push("");
  if (policy.warnings.length === 0) out.push("Warnings: none");
  else {
    out.push("Warnings:");
    for (const w of policy.warnings) out.push(`  [${w.code}] ${w.message}`);
  }
  return `${out.join("\n")}\n`;
}

const collect = (value: string, previous: string[]) => [...previous, value];

/**
 * Parses and validates every SMI document of a file (`namespace`: where objects without one would be
 * created, as `kubectl apply -n`). Throws one MeshError listing every problem of every document.
 */
export function loadSmiObjects(text: string, source: string, namespace: string): ValidSmiObject[] {
  const docs = parseDocuments(
    text,
    source,
    "write a TrafficTarget (access.smi-spec.io/v1alpha3), a TCPRoute or HTTPRouteGroup (specs.smi-spec.io/v1alpha4), or an Egress (policy.openservicemesh.io/v1alpha1)",
  );
  const loaded: ValidSmiObject[] = [];
  const failures: { label: string; issues: readonly ConfigIssue[] }[] = [];
  docs.forEach((doc, index) => {
    const kind = (doc as { kind?: unknown } | null)?.kind;
    const label = describeDocument(doc, index, docs.length, typeof kind === "string" ? kind : "document");
    try {
      loaded.push(validateSmiObject(doc, namespace));
    } catch (error) {
      if (error instanceof ConfigError) failures.push({ label, issues: error.issues });
      else throw error;
    }
  });
  if (failures.length > 0) throw invalid(source, failures, docs.length > 1);
  return loaded;
}

/** Registers `osm policy show`. */
export function registerPolicy(program: Command): void {
  const policy = program
    .command("policy")
    .description("inspect the effective traffic interception policy and the SMI access policies");
  policy
    .command("check-pods")
    .description("check if two pods are authorized to communicate via a traffic policy (OSM's verb)")
    .argument("<sourcePod>", "<namespace>/<pod>, or <pod> in the default namespace")
    .argument("<destinationPod>", "<namespace>/<pod>, or <pod> in the default namespace")
    .option("--osm-namespace <ns>", "namespace of the mesh's MeshConfig", "osm-system")
    .action(async (source: string, destination: string, flags: { osmNamespace: string }) => {
      const { checkPods } = await import("../../guide/check-pods.ts");
      const { loadKubeConfig } = await import("../../edge/kube-client.ts");
      process.stdout.write(
        await checkPods(loadKubeConfig({}), { source, destination, osmNamespace: flags.osmNamespace }),
      );
    });
  policy
    .command("validate")
    .description(
      "validate policy documents (SMI TrafficTarget, TCPRoute, HTTPRouteGroup; OSM Egress; YAML or JSON, one or many) as the API server's validator does; exit 1 if any is invalid",
    )
    .requiredOption("-f, --filename <file>", "file, or - for stdin")
    .option(
      "-n, --namespace <namespace>",
      "namespace of documents that name none (kubectl apply -n)",
      "default",
    )
    .action((options: { filename: string; namespace: string }) => {
      const { text, source } = readInputFile(options.filename);
      for (const valid of loadSmiObjects(text, source, options.namespace)) {
        const { kind, object } = valid;
        const name = `${object.metadata.namespace ?? options.namespace}/${object.metadata.name ?? "<unnamed>"}`;
        process.stdout.write(`${source}: ${kind} ${name} is valid (${object.apiVersion})\n`);
        for (const warning of smiWarnings(valid)) {
          const at = warning.indexOf(": ");
          process.stdout.write(`  warning [${warning.slice(0, at)}]: ${warning.slice(at + 2)}\n`);
        }
      }
    });
  policy
    .command("show")
    .description(
      "print the effective traffic policy of a pod: MeshConfig merged with the pod's annotations (OSM's order), with provenance and warnings",
    )
    .requiredOption("-f, --filename <file>", "MeshConfig file (YAML or JSON), or - for stdin")
    .option(
      "--annotation <KEY=VALUE>",
      "a pod annotation, e.g. openservicemesh.io/outbound-port-exclusion-list=6379 (repeatable)",
      collect,
      [],
    )
    .addOption(
      new Option("-o, --output <format>", "output format")
        .choices(["table", "json", "yaml"])
        .default("table"),
    )
    .action((options: { filename: string; annotation: string[]; output: "table" | "json" | "yaml" }) => {
      const annotations = parseAnnotationFlags(options.annotation);
      const { text, source } = readInputFile(options.filename);
      const loaded = loadMeshConfigs(text, source);
      if (loaded.length !== 1) {
        throw new MeshError(
          ErrorCode.InvalidArgument,
          `${source} holds ${loaded.length} MeshConfig documents; policy show needs exactly one`,
          {
            hint: "split the file, or pass the document you mean on stdin with -f -",
          },
        );
      }
      const effective = buildEffectivePolicy(loaded[0]!.config, { podAnnotations: annotations });
      if (options.output === "table") {
        process.stdout.write(renderPolicyTable(effective, { source, annotations }));
        return;
      }
      const document = JSON.parse(JSON.stringify(policyDocument(effective)));
      process.stdout.write(
        options.output === "json" ? `${JSON.stringify(document, null, 2)}\n` : stringify(document),
      );
    });
}
