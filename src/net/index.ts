/** IP and CIDR value types for IPv4 and IPv6: strict parsing, canonical printing, masking, aggregation. */
export {
  aggregateCidrs,
  type CidrParseResult,
  cidrContains,
  cidrCovers,
  cidrEquals,
  cidrRange,
  cidrsOverlap,
  compareCidrs,
  makeCidr,
  maskAddress,
  parseCidr,
  prefixMask,
  rangeToCidrs,
  splitByFamily,
  tryParseCidr,
} from "./cidr.ts";
export { formatHost, formatHostPort, parseListenAddress, splitHostPort } from "./host-port.ts";
export {
  familyBits,
  familyMax,
  formatIp,
  ipFromBigint,
  type ParseResult,
  parseIp,
  tryParseIp,
} from "./ip.ts";
export type { Cidr, IpAddress, IpFamily } from "./types.ts";
