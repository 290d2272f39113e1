/**
 * Apply / verify / cleanup for any backend, plus the post-apply probe. The only module of interception/
 * (with the backends it calls) that runs processes, always through the injected CommandRunner.
 */

import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import { ENVOY_OUTBOUND_LISTENER_PORT } from "../constants.ts";
import type { CommandRunner } from "../edge/command-runner.ts";
import type { NftNetlink } from "../edge/nft-batch.ts";
import { ErrorCode, MeshError } from "../errors.ts";
import { formatHostPort } from "../net/host-port.ts";
import { parseIp } from "../net/index.ts";
import type { IpAddress } from "../net/types.ts";
import { type ApplyOutcome, applyIptables, cleanupIptables, verifyIptables } from "./backend-iptables.ts";
import { applyNft, cleanupNft, verifyNft } from "./backend-nft.ts";
import { explain } from "./explain.ts";
import { NFT_TABLE } from "./plan-nft.ts";
import type { BackendVariant, InterceptionPlan } from "./types.ts";

export interface EngineOptions {
  readonly runner: CommandRunner;
  readonly variant: BackendVariant;
  /** Pod IP for localProxyMode PodIP (the init container's `$POD_IP`). */
  readonly podIp?: string;
  readonly logger?: Logger;
  /** nf_tables over netlink in the pod's namespace (the node agent's nft helper), when there is one. */
  readonly netlink?: NftNetlink;
}

const iptVariant = (v: BackendVariant) => (v === "iptables-legacy" ? "legacy" : "nft");

/** Applies the plan atomically; re-applying an identical plan changes nothing. */
export async function applyInterception(plan: InterceptionPlan, o: EngineOptions): Promise<ApplyOutcome> {
  const outcome =
    o.variant === "nftables"
      ? await applyNft(o.runner, plan, o.podIp)
      : await applyIptables(o.runner, iptVariant(o.variant), plan, o.podIp);
  const after = await verifyInterception(plan, o);
  if (after.length > 0) {
    throw new MeshError(
      ErrorCode.VerifyFailed,
      `rules read back differ from the plan after apply:\n${after.join("\n")}`,
    );
  }
  o.logger?.info({ variant: o.variant, changed: outcome.changed }, "interception applied");
  return outcome;
}

/** Reads the rules back; returns the differences from the plan (empty = in sync). */
export function verifyInterception(plan: InterceptionPlan, o: EngineOptions): Promise<string[]> {
  return o.variant === "nftables"
    ? verifyNft(o.runner, plan, o.podIp)
    : verifyIptables(o.runner, iptVariant(o.variant), plan, o.podIp);
}

/** Removes only our rules for the given backend. Returns whether anything was removed. */
export function cleanupInterception(o: Pick<EngineOptions, "runner" | "variant">): Promise<boolean> {
  return o.variant === "nftables"
    ? cleanupNft(o.runner, NFT_TABLE)
    : cleanupIptables(o.runner, iptVariant(o.variant));
}

const PROBE_CANDIDATES = ["192.0.2.1", "198.51.100.1", "203.0.113.1", "2001:db8::1"];
const PROBE_PORTS = [80, 443, 8080, 9];

/** A destination the plan sends to the outbound sidecar, or undefined when none of the candidates is. */
export function chooseProbeTarget(
  plan: InterceptionPlan,
  variant: BackendVariant,
): { ip: IpAddress; port: number } | undefined {
  const backend = variant === "nftables" ? "nftables" : "iptables";
  const included = plan.nft.addressSets
    .filter((s) => s.name.startsWith("out_in"))
    .flatMap((s) => s.entries.map((e) => e.cidr.toString().split("/")[0]!));
  for (const text of [...PROBE_CANDIDATES, ...included]) {
    const ip = parseIp(text);
    for (const port of PROBE_PORTS) {
      if (explain(plan, { destination: ip, port }, backend).verdict === "outbound-sidecar")
        return { ip, port };
    }
  }
  return undefined;
}

export interface ProbeResult {
  readonly target: string;
  readonly result: string;
}

/**
 * Checks that a connection to an intercepted address really reaches port 15001 in the namespace (as Istio's
 * validation container does). Throws ProbeFailed otherwise.
 */
export async function probeInterception(
  plan: InterceptionPlan,
  o: Pick<EngineOptions, "runner" | "variant">,
): Promise<ProbeResult | undefined> {
  const target = chooseProbeTarget(plan, o.variant);
  if (!target) return undefined;
  const child = fileURLToPath(new URL("./probe-child.ts", import.meta.url));
  const r = await o.runner.run([
    process.execPath,
    child,
    target.ip.toString(),
    String(target.port),
    String(ENVOY_OUTBOUND_LISTENER_PORT),
  ]);
  const where = formatHostPort(target.ip.toString(), target.port);
  if (r.code !== 0) {
    throw new MeshError(
      ErrorCode.ProbeFailed,
      `probe: a connection to ${where} did not reach port ${ENVOY_OUTBOUND_LISTENER_PORT}: ${(r.stdout + r.stderr).trim()}`,
      { hint: "the pod must not start with broken interception; check the backend and the pod's routes" },
    );
  }
  return { target: where, result: r.stdout.trim() };
}
