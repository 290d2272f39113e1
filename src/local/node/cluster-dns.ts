/**
 * A minimal cluster DNS, as CoreDNS's `kubernetes` plugin answers for Services: `<svc>.<ns>.svc.cluster.local`
 * → the ClusterIP (A; AAAA for an IPv6 ClusterIP), a headless Service → its ready endpoints' addresses. Shorter
 * names (`<svc>.<ns>`, `<svc>`) resolve through the search path a pod's `/etc/resolv.conf` gets
 * (`pod-files.ts`). Everything else is NXDOMAIN: nothing is forwarded outside. A name that exists but has no
 * record of the asked type is NOERROR without answers (NODATA), so resolvers do not give up on the A record
 * when AAAA is empty. Served over UDP and TCP on the bridge gateway; packets are read and written by the
 * `dns-packet` library; the records come from the node agent's Service and Endpoints watches.
 */
import { createSocket } from "node:dgram";
import { isIPv4, isIPv6, createServer as tcpServer } from "node:net";
import type { V1Endpoints, V1Service } from "@kubernetes/client-node";
import * as dns from "dns-packet";

export const CLUSTER_DOMAIN = "cluster.local";
/** Seconds; CoreDNS's default for Service records. */
const TTL = 5;
const RCODE = { NOERROR: 0, FORMERR: 1, NXDOMAIN: 3, NOTIMP: 4 } as const;
/** Without EDNS a UDP answer holds 512 bytes; a longer one is truncated (TC) and asked again over TCP. */
const UDP_LIMIT = 512;

export interface DnsRecords {
  readonly a: readonly string[];
  readonly aaaa: readonly string[];
}

export type DnsIndex = ReadonlyMap<string, DnsRecords>;

const split = (ips: readonly string[]): DnsRecords => ({
  a: ips.filter((ip) => isIPv4(ip)),
  aaaa: ips.filter((ip) => isIPv6(ip)),
});

/** Name → records for every Service (lower-case names, no trailing dot). */
export function buildDnsIndex(
  services: readonly V1Service[],
  endpoints: readonly V1Endpoints[],
  domain = CLUSTER_DOMAIN,
): Map<string, DnsRecords> {
  const eps = new Map(endpoints.map((e) => [`${e.metadata?.namespace}/${e.metadata?.name}`, e]));
  const index = new Map<string, DnsRecords>();
  for (const svc of services) {
    const name = svc.metadata?.name;
    const ns = svc.metadata?.namespace;
    if (!name || !ns) continue;
    const spec = svc.spec ?? {};
    const clusterIPs = spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : []);
    const headless = spec.clusterIP === "None";
    const ips = headless
      ? (eps.get(`${ns}/${name}`)?.subsets ?? []).flatMap((s) => (s.addresses ?? []).map((a) => a.ip))
      : clusterIPs.filter((ip) => ip !== "None");
    index.set(`${name}.${ns}.svc.${domain}`.toLowerCase(), split([...new Set(ips)]));
  }
  return index;
}

/**
 * Names given to external hosts (`osm mesh external-host add … --hostname httpbin.org`) → their single
 * addresses (`/32`, `/128` or bare), so pods resolve an external host by the name an Egress policy lists.
 */
export function externalHostRecords(
  hosts: readonly { readonly hostnames?: readonly string[]; readonly addresses: readonly string[] }[],
): Map<string, DnsRecords> {
  const index = new Map<string, DnsRecords>();
  for (const host of hosts) {
    const ips = host.addresses.map((a) => a.replace(/\/(32|128)$/, "")).filter((a) => !a.includes("/"));
    for (const name of host.hostnames ?? []) index.set(name.toLowerCase(), split(ips));
  }
  return index;
}

/** The answer to one DNS message (pure); undefined for what is not worth an answer (not a query, garbage). */
export function answerQuery(
  message: Buffer,
  index: DnsIndex,
  limit = Number.POSITIVE_INFINITY,
): Buffer | undefined {
  let query: dns.DecodedPacket;
  try {
    query = dns.decode(message);
  } catch {
    // Too short or malformed to echo an id: a resolver times out, as with any lost packet.
    return undefined;
  }
  if (query.type !== "query") return undefined;
  const opcode = (message.readUInt16BE(2) >> 11) & 0xf;
  const questions = query.questions ?? [];
  const reply = (rcode: number, answers: dns.Answer[] = [], truncated = false) =>
    dns.encode({
      type: "response",
      id: query.id ?? 0,
      flags:
        dns.AUTHORITATIVE_ANSWER |
        (query.flag_rd ? dns.RECURSION_DESIRED : 0) |
        (truncated ? dns.TRUNCATED_RESPONSE : 0) |
        (opcode << 11) |
        rcode,
      questions,
      answers,
    });
  if (opcode !== 0) return reply(RCODE.NOTIMP);
  const [question] = questions;
  if (questions.length !== 1 || !question) return reply(RCODE.FORMERR);
  const records = index.get(question.name.toLowerCase().replace(/\.$/, ""));
  if (!records) return reply(RCODE.NXDOMAIN);
  const answers: dns.Answer[] = [];
  if (question.class === "IN" || question.class === undefined) {
    if (question.type === "A")
      for (const ip of records.a) answers.push({ type: "A", name: question.name, ttl: TTL, data: ip });
    if (question.type === "AAAA")
      for (const ip of records.aaaa) answers.push({ type: "AAAA", name: question.name, ttl: TTL, data: ip });
  }
  const full = reply(RCODE.NOERROR, answers);
  return full.length <= limit ? full : reply(RCODE.NOERROR, [], true);
}

export interface ClusterDns {
  close(): Promise<void>;
}

/** Serves `index()` on `host:port` over UDP and TCP. Rejects when either cannot listen (e.g. port taken). */
export async function startClusterDns(
  host: string,
  port: number,
  index: () => DnsIndex,
): Promise<ClusterDns> {
  const udp = createSocket(isIPv6(host) ? "udp6" : "udp4");
  udp.on("message", (msg, peer) => {
    const out = answerQuery(msg, index(), UDP_LIMIT);
    if (out) udp.send(out, peer.port, peer.address);
  });
  const tcp = tcpServer((socket) => {
    let pending = Buffer.alloc(0);
    socket.setTimeout(10_000, () => socket.destroy());
    socket.on("error", () => socket.destroy());
    socket.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const size = pending.readUInt16BE(0);
        const out = answerQuery(pending.subarray(2, 2 + size), index());
        pending = pending.subarray(2 + size);
        if (!out) return socket.destroy();
        const length = Buffer.alloc(2);
        length.writeUInt16BE(out.length);
        socket.write(Buffer.concat([length, out]));
      }
      // A message is at most 64 KiB; anything longer than that unanswered is not DNS.
      if (pending.length > 65_537) socket.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    udp.once("error", reject);
    udp.bind(port, host, () => {
      udp.off("error", reject);
      resolve();
    });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      tcp.once("error", reject);
      tcp.listen(port, host, () => {
        tcp.off("error", reject);
        resolve();
      });
    });
  } catch (error) {
    udp.close();
    throw error;
  }
  udp.on("error", () => {});
  return {
    close: () =>
      new Promise<void>((resolve) => {
        udp.close();
        tcp.close(() => resolve());
      }),
  };
}
