import { type Command, Option } from "commander";
import { describeProvenance } from "../../config/index.ts";
import { ErrorCode, MeshError } from "../../errors.ts";
import { parseDestination } from "../../guide/explain-pod.ts";
import { runExplainPodCommand } from "../../guide/explain-pod-run.ts";
import {
  buildPlan,
  describeDecidingRule,
  type ExplainProtocol,
  type Explanation,
  explain,
} from "../../interception/index.ts";
import { collect, loadPolicy } from "./interception-input.ts";

const VERDICT_TEXT: Record<string, string> = {
  direct: "direct (not intercepted)",
  "outbound-sidecar": "outbound sidecar (redirected to 15001)",
  "inbound-sidecar": "inbound sidecar (redirected to 15003)",
  "dnat-pod-ip": "DNAT to the pod IP (localProxyMode PodIP)",
  dropped:
    "dropped by the egress filter (egress disabled: non-TCP leaves only to excluded destinations and the pod's DNS resolvers)",
};

export function renderExplanation(
  where: string,
  direction: string,
  e: Explanation,
  egress: boolean,
  protocol: ExplainProtocol = "tcp",
): string {
  const what = protocol === "tcp" ? direction : `${protocol} ${direction}`;
  const lines = [`${where} ${what} (${e.backend}): ${VERDICT_TEXT[e.verdict] ?? e.verdict}`];
  lines.push(`  deciding rule: ${describeDecidingRule(e)}`);
  if (e.provenance.length > 0) {
    const entry = e.matchedEntry ? ` (entry ${e.matchedEntry})` : "";
    lines.push(`  from: ${e.provenance.map(describeProvenance).join("; ")}${entry}`);
  }
  if (e.verdict === "outbound-sidecar") {
    lines.push(
      `  then: the sidecar ${egress ? "passes non-mesh destinations through (egress enabled)" : "refuses non-mesh destinations (egress disabled)"}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/** Registers `osm explain -f MESHCONFIG [--annotation K=V]... IP:PORT`. */
export function registerExplain(program: Command): void {
  program
    .command("explain")
    .description(
      "say where a connection from the pod goes (direct, sidecar or dropped), which rule decides, and why",
    )
    .argument("<destination>", "IP:PORT or [IPv6]:PORT (or pod/NAME, then IP:PORT: a running pod)")
    .argument("[podDestination]", "with pod/NAME: IP:PORT")
    .option("-f, --filename <file>", "MeshConfig file (YAML or JSON), or - for stdin")
    .option("-n, --namespace <ns>", "with pod/NAME: the pod's namespace")
    .option(
      "--host <name>",
      "with pod/NAME: the TLS server name or HTTP Host the client sends (Egress http/https ports)",
    )
    .option(
      "--path <path>",
      "with pod/NAME and --host: an http request's path (which HTTPRouteGroup match of an http Egress holds; 404 if none); with --from: the request whose HTTPRouteGroup route to explain",
    )
    .option("--method <method>", "with --path: the request's method (default GET)")
    .option(
      "--from <namespace/pod>",
      "with pod/NAME: explain an inbound connection from this pod to pod/NAME's IP:PORT (or PORT): the TrafficTarget that lets it in, or none",
    )
    .option("--header <NAME:VALUE>", "with --from and --path: a request header (repeatable)", collect, [])
    .option("--annotation <KEY=VALUE>", "a pod annotation (repeatable)", collect, [])
    .addOption(
      new Option("--backend <backend>", "rules to evaluate")
        .choices(["iptables", "nftables"])
        .default("iptables"),
    )
    .addOption(
      new Option("--direction <direction>", "connection direction")
        .choices(["outbound", "inbound"])
        .default("outbound"),
    )
    .addOption(
      new Option("--protocol <protocol>", "tcp, or udp/icmp (the egress filter when egress is disabled)")
        .choices(["tcp", "udp", "icmp"])
        .default("tcp"),
    )
    .option("--uid <uid>", "uid of the sending process (outbound)", "0")
    .option("--interface <name>", "interface the connection leaves (outbound) or arrives on (inbound)")
    .addOption(new Option("-o, --output <format>", "output format").choices(["text", "json"]).default("text"))
    .action(
      async (
        destination: string,
        podDestination: string | undefined,
        flags: {
          filename?: string;
          namespace?: string;
          host?: string;
          from?: string;
          path?: string;
          method?: string;
          header: string[];
          annotation: string[];
          backend: "iptables" | "nftables";
          direction: "outbound" | "inbound";
          protocol: ExplainProtocol;
          uid: string;
          interface?: string;
          output: "text" | "json";
        },
      ) => {
        if (destination.includes("/") && !destination.includes(":")) {
          // osm explain pod/NAME -n NS IP:PORT (src/guide/explain-pod-run.ts)
          await runExplainPodCommand(destination, podDestination, flags, (t) => process.stdout.write(t));
          return;
        }
        if (flags.filename === undefined) {
          throw new MeshError(
            ErrorCode.InvalidArgument,
            "required option '-f, --filename <file>' not specified",
          );
        }
        const { ip, port } = parseDestination(destination);
        if (!/^\d+$/.test(flags.uid)) {
          throw new MeshError(
            ErrorCode.InvalidArgument,
            `--uid ${JSON.stringify(flags.uid)} is not a number`,
          );
        }
        const policy = loadPolicy(flags.filename, flags.annotation);
        // IPv6 always: osm-init installs the IPv6 counterpart in every pod that has IPv6.
        const plan = buildPlan(policy, { ipv6: true });
        const iface =
          flags.interface === undefined
            ? {}
            : flags.direction === "outbound"
              ? { outInterface: flags.interface }
              : { inInterface: flags.interface };
        const e = explain(
          plan,
          {
            destination: ip,
            port,
            protocol: flags.protocol,
            direction: flags.direction,
            uid: Number(flags.uid),
            ...iface,
          },
          flags.backend,
        );
        process.stdout.write(
          flags.output === "json"
            ? `${JSON.stringify({ destination, ...e }, null, 2)}\n`
            : renderExplanation(destination, flags.direction, e, policy.enableEgress, flags.protocol),
        );
      },
    );
}
