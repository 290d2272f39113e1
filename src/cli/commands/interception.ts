import { existsSync, readFileSync } from "node:fs";
import { type Command, Option } from "commander";
import pino from "pino";
import { policyFromRecord } from "../../config/index.ts";
import { fetchPolicyText } from "../../controller/policy-fetch.ts";
import { createProcessRunner } from "../../edge/command-runner.ts";
import { ErrorCode, MeshError } from "../../errors.ts";
import {
  applyInterception,
  type BackendChoice,
  type BackendVariant,
  buildPlan,
  cleanupInterception,
  detectBackend,
  parseResolvConf,
  probeInterception,
  renderIptables,
  renderNft,
  verifyInterception,
} from "../../interception/index.ts";
import { collect, loadPolicy } from "./interception-input.ts";

/** The egress filter lets DNS reach these (egress disabled): the resolvers of /etc/resolv.conf (a pod's own in osm-init). */
function hostResolvers() {
  try {
    return parseResolvConf(readFileSync("/etc/resolv.conf", "utf8"));
  } catch {
    return [];
  }
}

interface PolicyFlags {
  filename?: string;
  annotation: string[];
}

interface NetnsFlags {
  netns?: string;
  backend: BackendChoice;
  podIp?: string;
}

const BACKEND_CHOICES = ["auto", "nftables", "iptables", "iptables-legacy", "iptables-nft"];

function policyOptions(command: Command, required: boolean): Command {
  const file = "MeshConfig file (YAML or JSON), or - for stdin";
  (required
    ? command.requiredOption("-f, --filename <file>", file)
    : command.option("-f, --filename <file>", `${file}; default: the OSM v1.2 chart defaults`)
  ).option(
    "--annotation <KEY=VALUE>",
    "a pod annotation, e.g. openservicemesh.io/outbound-ip-range-exclusion-list=203.0.113.10/32 (repeatable)",
    collect,
    [],
  );
  return command;
}

function netnsOptions(command: Command): Command {
  return command
    .option(
      "--netns <path>",
      "network namespace to program (e.g. /var/run/netns/NAME); default: the current one",
    )
    .addOption(
      new Option("--backend <backend>", "backend; auto detects it").choices(BACKEND_CHOICES).default("auto"),
    )
    .option("--pod-ip <ip>", "pod IP for localProxyMode PodIP (default: env POD_IP)");
}

async function engine(flags: NetnsFlags) {
  const runner = createProcessRunner(flags.netns ? { netns: flags.netns } : {});
  const detection = await detectBackend(runner, flags.backend);
  for (const w of detection.warnings) process.stderr.write(`warning: ${w}\n`);
  const podIp = flags.podIp ?? process.env["POD_IP"];
  const logger = pino({ level: "warn" }, pino.destination(2));
  return { runner, variant: detection.variant, logger, ...(podIp ? { podIp } : {}) };
}

/** Registers `osm interception render|apply|verify|cleanup`. */
export function registerInterception(program: Command): void {
  const interception = program
    .command("interception")
    .description("render, apply, verify and clean up the pod's traffic interception rules");

  policyOptions(
    interception
      .command("render")
      .description(
        "print exactly what would be applied (dry run): OSM's iptables script, or the nft ruleset",
      ),
    true,
  )
    .addOption(
      new Option("--backend <backend>", "renderer").choices(["iptables", "nftables"]).default("iptables"),
    )
    .option("--pod-ip <ip>", "nftables: write this pod IP instead of $POD_IP (localProxyMode PodIP)")
    .action((flags: PolicyFlags & { backend: "iptables" | "nftables"; podIp?: string }) => {
      const plan = buildPlan(loadPolicy(flags.filename, flags.annotation));
      process.stdout.write(
        flags.backend === "iptables"
          ? renderIptables(plan)
          : renderNft(plan, flags.podIp ? { podIp: flags.podIp } : {}),
      );
    });

  netnsOptions(
    policyOptions(
      interception
        .command("apply")
        .description(
          "program the rules atomically (a no-op when already in place), then probe that they work",
        ),
      false,
    ),
  )
    .option("--no-probe", "skip the post-apply probe")
    .action(async (flags: PolicyFlags & NetnsFlags & { probe: boolean }) => {
      const plan = buildPlan(loadPolicy(flags.filename, flags.annotation), { resolvers: hostResolvers() });
      const o = await engine(flags);
      const outcome = await applyInterception(plan, o);
      const probe = flags.probe ? await probeInterception(plan, o) : undefined;
      process.stdout.write(
        `${outcome.changed ? "applied" : "unchanged"} (${o.variant})${probe ? `; probe ${probe.target}: ${probe.result}` : ""}\n`,
      );
    });

  netnsOptions(
    policyOptions(
      interception.command("verify").description("read the rules back and compare them with the plan"),
      false,
    ),
  ).action(async (flags: PolicyFlags & NetnsFlags) => {
    const plan = buildPlan(loadPolicy(flags.filename, flags.annotation), { resolvers: hostResolvers() });
    const o = await engine(flags);
    const diff = await verifyInterception(plan, o);
    if (diff.length > 0) {
      throw new MeshError(
        ErrorCode.VerifyFailed,
        `interception rules differ from the plan (${o.variant}):\n${diff.join("\n")}`,
      );
    }
    process.stdout.write(`in sync (${o.variant})\n`);
  });

  interception
    .command("init")
    .description(
      "osm-init for a policy too large for the PodSpec: fetch it from the controller by its hash, check the hash, program it (fails closed)",
    )
    .requiredOption("--controller <url>", "the controller's base URL")
    .requiredOption(
      "--policy-hash <sha256>",
      "the hash recorded on the pod (osm-ts.io/interception-policy-hash)",
    )
    .addOption(
      new Option("--backend <backend>", "iptables: iptables-restore only; auto/nftables: nft when it works")
        .choices(["auto", "nftables", "iptables"])
        .default("auto"),
    )
    .option("--timeout <seconds>", "how long to wait for the controller", (v) => Number(v), 120)
    .action(async (flags: { controller: string; policyHash: string; backend: string; timeout: number }) => {
      const started = performance.now();
      const text = await fetchPolicyText(flags.controller, flags.policyHash, flags.timeout * 1000);
      const policy = policyFromRecord(text);
      // IPv6 whenever the pod has it (as the init script does); DNS to the pod's own resolvers.
      const plan = buildPlan(policy, { ipv6: existsSync("/proc/net/if_inet6"), resolvers: hostResolvers() });
      const o = await engine({ backend: flags.backend === "iptables" ? "iptables" : "auto" });
      await applyInterception(plan, o);
      const ms = Math.round(performance.now() - started);
      process.stdout.write(`applied policy ${flags.policyHash.slice(0, 16)} (${o.variant}) in ${ms} ms\n`);
    });

  interception
    .command("cleanup")
    .description(
      "remove only our rules (OSM_PROXY_* chains and their jumps, table inet osm_proxy); others stay",
    )
    .option("--netns <path>", "network namespace (default: the current one)")
    .addOption(
      new Option("--backend <backend>", "backend to clean; all: every one that is present")
        .choices(["all", "nftables", "iptables-legacy", "iptables-nft"])
        .default("all"),
    )
    .action(async (flags: { netns?: string; backend: string }) => {
      const runner = createProcessRunner(flags.netns ? { netns: flags.netns } : {});
      const variants: BackendVariant[] =
        flags.backend === "all"
          ? ["nftables", "iptables-legacy", "iptables-nft"]
          : [flags.backend as BackendVariant];
      const removed: string[] = [];
      for (const variant of variants) {
        try {
          if (await cleanupInterception({ runner, variant })) removed.push(variant);
        } catch (error) {
          // With "all", a backend the node lacks is not an error; an explicit one is.
          if (flags.backend !== "all") throw error;
        }
      }
      process.stdout.write(removed.length > 0 ? `removed (${removed.join(", ")})\n` : "nothing to remove\n");
    });
}
