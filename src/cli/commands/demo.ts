import { type Command, Option } from "commander";
import { ErrorCode, MeshError } from "../../errors.ts";
import { runDemo } from "../../guide/demo/demo.ts";
import { integer } from "../flags.ts";

interface DemoFlags {
  engine?: string;
  etcdPort?: number;
  kubeletPort?: number;
  ipv6: boolean;
  keep: boolean;
  stateDir?: string;
  kubeconfig?: string;
  port?: number;
  bridge?: string;
  namePrefix?: string;
  subnet4?: string;
  subnet6?: string;
  firstSlot?: number;
  lastSlot?: number;
}

function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new MeshError(ErrorCode.NotRoot, "osm demo needs root: pods are network namespaces on this host", {
      hint: "run it as root (sudo)",
    });
  }
}

async function run(demo: "exclusions" | "egress-policy", flags: DemoFlags): Promise<void> {
  requireRoot();
  const { ipv6, keep, ...mesh } = flags;
  const outcome = await runDemo({
    demo,
    ipv6,
    keep,
    mesh,
    env: process.env,
    write: (text) => process.stdout.write(text),
  });
  if (!outcome.ok) process.exitCode = 1;
}

/**
 * `osm demo`: OSM's guide "Outbound Traffic IP Range Exclusions", run for real with its own commands;
 * `osm demo egress-policy`: OSM's egress policy demo. The mesh options belong to `osm demo` and apply to both
 * (commander hands an option to the command that declares it, wherever it is written).
 */
export function registerDemo(program: Command): void {
  const hidden = (flags: string, description: string) => new Option(flags, description).hideHelp();
  const demo = program
    .command("demo")
    .description(
      "run OSM's guide 'Outbound Traffic IP Range Exclusions' for real on this host (root), printing each command " +
        "(`osm demo egress-policy`: OSM's egress policy demo)",
    )
    .option("--ipv6", "use the external addresses 2001:db8::10 and 2001:db8::11", false)
    .option(
      "--engine <engine>",
      "embedded (default) or kubernetes: the real kube-apiserver, controller manager, scheduler and etcd (built by bash scripts/kube-binaries)",
    )
    .option("--keep", "leave the mesh, the pods and the external host running to explore", false)
    .option("--state-dir <dir>", "state directory of `osm mesh up`")
    .option("--kubeconfig <path>", "kubeconfig `osm mesh up` writes and every command uses")
    .addOption(hidden("--port <port>", "API server port").argParser(integer("--port")))
    .addOption(hidden("--etcd-port <port>", "etcd client port").argParser(integer("--etcd-port")))
    .addOption(hidden("--kubelet-port <port>", "kubelet API port").argParser(integer("--kubelet-port")))
    .addOption(hidden("--bridge <name>", "pod bridge"))
    .addOption(hidden("--name-prefix <prefix>", "netns/veth name prefix"))
    .addOption(hidden("--subnet4 <cidr>", "pods' IPv4 subnet"))
    .addOption(hidden("--subnet6 <cidr>", "pods' IPv6 subnet"))
    .addOption(hidden("--first-slot <n>", "first pod slot").argParser(integer("--first-slot")))
    .addOption(hidden("--last-slot <n>", "last pod slot").argParser(integer("--last-slot")))
    // A mistyped demo name reaches this action as an argument: name the demos instead of commander's
    // "too many arguments".
    .allowExcessArguments(true)
    .action(async (flags: DemoFlags, command: Command) => {
      const [name] = command.args;
      if (name !== undefined) {
        throw new MeshError(ErrorCode.InvalidArgument, `osm demo: unknown demo ${JSON.stringify(name)}`, {
          hint: "the demos are `osm demo` (the exclusions guide) and `osm demo egress-policy`",
        });
      }
      await run("exclusions", flags);
    });
  demo
    .command("egress-policy")
    .summary(
      "run OSM's egress policy demo for real on this host (root): Egress policies with egress disabled",
    )
    .description(
      "run OSM's egress policy demo for real (root): with egress disabled, Egress policies let the curl pod " +
        "reach httpbin.org by host name over HTTP (with and without an HTTPRouteGroup path match: 404 outside " +
        "it) and by TLS server name over HTTPS, any host on a TCP port, and HTTP by address range; everything " +
        "else is refused, and deleting a policy refuses again, all without restarting the pod. httpbin.org " +
        "(203.0.113.10) and openservicemesh.io (203.0.113.11) are external hosts of the mesh, named by its " +
        "cluster DNS. Takes the options of `osm demo` (IPv4 only)",
    )
    .configureHelp({ showGlobalOptions: true })
    .action(async (_flags: unknown, command: Command) => {
      const flags = command.optsWithGlobals<DemoFlags>();
      if (flags.ipv6) {
        throw new MeshError(ErrorCode.InvalidArgument, "osm demo egress-policy runs over IPv4 only", {
          hint: "drop --ipv6 (the IPv6 external addresses are in osm demo --ipv6)",
        });
      }
      await run("egress-policy", flags);
    });
}
