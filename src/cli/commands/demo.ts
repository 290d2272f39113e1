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

/** `osm demo`: OSM's guide "Outbound Traffic IP Range Exclusions", run for real with its own commands. */
export function registerDemo(program: Command): void {
  const hidden = (flags: string, description: string) => new Option(flags, description).hideHelp();
  program
    .command("demo")
    .description(
      "run OSM's guide 'Outbound Traffic IP Range Exclusions' for real on this host (root), printing each command",
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
    .action(async (flags: DemoFlags) => {
      if (process.getuid?.() !== 0) {
        throw new MeshError(
          ErrorCode.NotRoot,
          "osm demo needs root: pods are network namespaces on this host",
          {
            hint: "run it as root (sudo)",
          },
        );
      }
      const { ipv6, keep, ...mesh } = flags;
      const outcome = await runDemo({
        ipv6,
        keep,
        mesh,
        env: process.env,
        write: (text) => process.stdout.write(text),
      });
      if (!outcome.ok) process.exitCode = 1;
    });
}
