/**
 * `host:port` text, the one parser and printer: `203.0.113.10:80`, `[2001:db8::10]:443` (an IPv6 address is
 * bracketed, RFC 3986 §3.2.2), `:8443` (no host). Pure; callers decide what the host may be and which ports
 * are allowed, and word their own errors.
 */

/** Splits `host:port`, `[host]:port` or `:port` (host ""); undefined when the text is not of that form. */
export function splitHostPort(text: string): { readonly host: string; readonly port: number } | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(text);
  if (!match) return undefined;
  return { host: match[1] ?? match[2] ?? "", port: Number(match[3]) };
}

/**
 * A listen address (`--listen`): `host:port`, `[v6]:port` or `:port` for all interfaces (0.0.0.0), port 0 to
 * 65535 (0 picks one); undefined when malformed.
 */
export function parseListenAddress(text: string): { host: string; port: number } | undefined {
  const split = splitHostPort(text.trim());
  if (!split || split.port > 65535) return undefined;
  return { host: split.host === "" ? "0.0.0.0" : split.host, port: split.port };
}

/** `host` bracketed when it is an IPv6 address, as URLs and `host:port` text need it. */
export function formatHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

/** `host:port`, with an IPv6 host bracketed. */
export function formatHostPort(host: string, port: number): string {
  return `${formatHost(host)}:${port}`;
}
