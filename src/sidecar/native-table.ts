/**
 * decide.ts's RoutingTable compiled for the relay threads (native/route-table.c reads these bytes; its
 * header comment has the layout). The threads decide what the table covers: mesh endpoints (round robin over
 * backends), egress passthrough, the egress-off refusal, the connection limit, the not-redirected check and
 * inbound to the app in permissive mode. Everything else (Egress policies, access control with permissive
 * mode off) is marked for JS, which gets the connection's fd and decides with decide.ts as before.
 */
import { tryParseAddressText } from "../net/ip.ts";
import { nonMeshOutbound, type RoutingTable } from "./decide.ts";

const OUTBOUND_OTHER = { refuse: 0, passthrough: 1, egress: 2 } as const;
const INBOUND_LOOPBACK = 0;
const INBOUND_JS = 1;

/** 16 bytes, network order (IPv4 in the first 4). `address` comes from a validated config. */
function addressBytes(address: string): { family: 4 | 6; bytes: Buffer } {
  const parsed = tryParseAddressText(address);
  if (!parsed.ok) throw new Error(`routing table: ${address} ${parsed.reason}`);
  const { family, value } = parsed.value;
  const bytes = Buffer.alloc(16);
  const width = family === 4 ? 4 : 16;
  for (let i = 0; i < width; i++) bytes[i] = Number((value >> BigInt(8 * (width - 1 - i))) & 0xffn);
  return { family, bytes };
}

function endpointBytes(
  address: string,
  port: number,
  extra: Buffer,
  head: (header: Buffer) => void,
  size: number,
): Buffer {
  const { family, bytes } = addressBytes(address);
  const header = Buffer.alloc(size);
  header[0] = family;
  header.writeUInt16LE(port, 2);
  bytes.copy(header, 4);
  head(header);
  return Buffer.concat([header, extra]);
}

/** The bytes `routeTableInstall` takes; `null` before the first config (the threads then fail closed). */
export function encodeRoutingTable(table: RoutingTable | undefined): Buffer | null {
  if (table === undefined) return null;
  const parts: Buffer[] = [];
  const header = Buffer.alloc(16);
  header.write("OSMT", 0, "latin1");
  header[4] = 1;
  header[5] = OUTBOUND_OTHER[nonMeshOutbound(table)];
  // decideInbound's access control (permissive mode off) needs the peer's TrafficTarget rules: JS.
  header[6] = table.inbound === undefined ? INBOUND_LOOPBACK : INBOUND_JS;
  header.writeUInt32LE(table.config.maxDataPlaneConnections, 8);
  header.writeUInt32LE(table.endpoints.size, 12);
  parts.push(header);
  for (const endpoint of table.endpoints.values()) {
    const service = Buffer.from(endpoint.service);
    const target = Buffer.from(endpoint.allowedBy ?? "");
    const backends = endpoint.backends.map((backend) =>
      endpointBytes(backend.ip, backend.port, Buffer.alloc(0), () => {}, 20),
    );
    parts.push(
      endpointBytes(
        endpoint.ip,
        endpoint.port,
        Buffer.concat([service, target, ...backends]),
        (h) => {
          h.writeUInt16LE(endpoint.backends.length, 20);
          h.writeUInt16LE(service.length, 22);
          h.writeUInt16LE(target.length, 24);
        },
        28,
      ),
    );
  }
  return Buffer.concat(parts);
}
