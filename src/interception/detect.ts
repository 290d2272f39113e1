/**
 * Backend detection. nft works → nftables. Otherwise iptables, with the legacy vs nft variant chosen by
 * probing the **nat** table (istio#57385: the filter table can exist while nat does not); when both variants
 * hold rules, warn and take the one holding more (Kuma does the same).
 */
import type { CommandRunner } from "../edge/command-runner.ts";
import type { BackendVariant } from "./types.ts";

export type BackendChoice = "auto" | "iptables" | "nftables" | BackendVariant;

export interface Detection {
  readonly variant: BackendVariant;
  readonly warnings: readonly string[];
}

async function natRules(runner: CommandRunner, variant: "legacy" | "nft"): Promise<number | undefined> {
  const r = await runner.run([`iptables-${variant}-save`, "-t", "nat"]);
  if (r.code !== 0 || !r.stdout.includes("*nat")) return undefined;
  return r.stdout.split("\n").filter((l) => l.startsWith("-A ")).length;
}

/** Picks the backend; an explicit variant is returned as is. */
export async function detectBackend(
  runner: CommandRunner,
  choice: BackendChoice = "auto",
): Promise<Detection> {
  if (choice === "nftables" || choice === "iptables-legacy" || choice === "iptables-nft") {
    return { variant: choice, warnings: [] };
  }
  if (choice === "auto") {
    const nft = await runner.run(["nft", "list", "tables"]);
    if (nft.code === 0) return { variant: "nftables", warnings: [] };
  }
  const [legacy, nft] = await Promise.all([natRules(runner, "legacy"), natRules(runner, "nft")]);
  if (legacy !== undefined && nft !== undefined && legacy > 0 && nft > 0) {
    const variant = legacy > nft ? "iptables-legacy" : "iptables-nft";
    return {
      variant,
      warnings: [
        `both iptables-legacy (${legacy} nat rules) and iptables-nft (${nft} nat rules) are in use; using ${variant}`,
      ],
    };
  }
  if (legacy !== undefined && legacy > 0) return { variant: "iptables-legacy", warnings: [] };
  if (nft !== undefined) return { variant: "iptables-nft", warnings: [] };
  if (legacy !== undefined) return { variant: "iptables-legacy", warnings: [] };
  return {
    variant: "iptables-nft",
    warnings: ["no iptables variant can read the nat table; trying iptables-nft"],
  };
}
