/**
 * The shapes of IP values shared across the project. Plain data (bigint addresses), so the pure core can pass
 * them around freely; parsing and arithmetic live next to this file.
 */
export type IpFamily = 4 | 6;

/** One IP address. `value` is the address as an unsigned integer (32 bits for v4, 128 for v6). */
export interface IpAddress {
  readonly family: IpFamily;
  readonly value: bigint;
  /** Canonical text: dotted quad, or RFC 5952 for IPv6. */
  toString(): string;
}

/** One CIDR prefix. `address` is the network address with host bits cleared (masked). */
export interface Cidr {
  readonly family: IpFamily;
  readonly address: bigint;
  readonly prefixLength: number;
  /** Canonical text, e.g. `10.0.0.0/8`, `2001:db8::/32`. */
  toString(): string;
}
