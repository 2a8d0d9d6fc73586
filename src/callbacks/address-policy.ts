import { lookup as dnsLookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";

/** Resolves a host name to every address it has (injectable for tests). */
export type Resolver = (hostname: string) => Promise<{ address: string; family: number }[]>;

export const systemResolver: Resolver = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

// Loopback, private, link-local, CGNAT, metadata, documentation, benchmarking, multicast and
// reserved ranges: never a callback target unless the allowlist names them.
const BLOCKED = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const) {
  BLOCKED.addSubnet(net, prefix, "ipv4");
}
for (const [net, prefix] of [
  ["::", 96], // unspecified, loopback and the deprecated IPv4-compatible ::a.b.c.d
  ["::ffff:0:0:0", 96], // IPv4-translated (SIIT)
  ["100::", 64],
  ["2001:db8::", 32],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
] as const) {
  BLOCKED.addSubnet(net, prefix, "ipv6");
}

/** The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d), compatible or NAT64 IPv6 address. */
function embeddedIpv4(address: string): string | null {
  const lower = address.toLowerCase();
  const dotted = /^(?:::ffff:|::|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted) return dotted[1]!;
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (hex) {
    const hi = parseInt(hex[1]!, 16);
    const lo = parseInt(hex[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return null;
}

/** A DNS name as `--callback-allow` takes it (letters, digits, hyphens, dots; an optional final dot). */
const HOST_NAME =
  /^(?=.{1,254}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.?$/i;

export class CallbackForbiddenError extends Error {
  override name = "CallbackForbiddenError";
}

/**
 * Which callback URLs and addresses Tessera may connect to. The same check runs at submit and
 * at connect time (in the socket's `lookup`), so a name that later resolves elsewhere (DNS
 * rebinding) is refused then too, and the connection goes only to an address that was checked.
 */
export class AddressPolicy {
  private readonly allowedHosts = new Set<string>();
  private readonly allowedNets = new BlockList();

  constructor(
    allow: readonly string[] = [],
    readonly resolve: Resolver = systemResolver,
  ) {
    for (const entry of allow) {
      const [net = "", prefix, extra] = entry.split("/");
      const family = isIP(net);
      const max = family === 4 ? 32 : 128;
      const bits = prefix === undefined ? max : /^\d{1,3}$/.test(prefix) ? Number(prefix) : NaN;
      if (family !== 0 && extra === undefined && bits <= max) {
        this.allowedNets.addSubnet(net, bits, family === 4 ? "ipv4" : "ipv6");
      } else if (prefix === undefined && HOST_NAME.test(entry)) {
        this.allowedHosts.add(entry.toLowerCase().replace(/\.$/, ""));
      } else {
        throw new TypeError(
          `--callback-allow: "${entry}" is neither a host name nor an address or CIDR (e.g. 127.0.0.1/32, ::1)`,
        );
      }
    }
  }

  /** Whether Tessera may connect to this address. */
  allowsAddress(address: string): boolean {
    const family = isIP(address);
    if (family === 0) return false;
    const type = family === 4 ? "ipv4" : "ipv6";
    if (this.allowedNets.check(address, type)) return true;
    if (family === 6) {
      const v4 = embeddedIpv4(address);
      if (v4 !== null) return this.allowsAddress(v4);
    }
    return !BLOCKED.check(address, type);
  }

  /**
   * Check a URL and resolve its host: the addresses to connect to. Throws
   * CallbackForbiddenError when the scheme, the host or any of its addresses is not allowed
   * (a mixed public/private answer is refused), or the name does not resolve.
   */
  async check(url: URL): Promise<{ address: string; family: number }[]> {
    if (url.protocol !== "http:" && url.protocol !== "https:")
      throw new CallbackForbiddenError("only http and https callbacks are allowed");
    if (url.username || url.password)
      throw new CallbackForbiddenError("callback URLs must not carry credentials");
    const host = url.hostname
      .replace(/^\[|\]$/g, "")
      .replace(/\.$/, "")
      .toLowerCase();
    const literal = isIP(host);
    if (literal !== 0) {
      if (!this.allowsAddress(host))
        throw new CallbackForbiddenError(`callback address ${host} is not allowed`);
      return [{ address: host, family: literal }];
    }
    let addresses: { address: string; family: number }[];
    try {
      addresses = await this.resolve(host);
    } catch {
      throw new CallbackForbiddenError(`callback host ${host} does not resolve`);
    }
    if (addresses.length === 0) throw new CallbackForbiddenError(`callback host ${host} does not resolve`);
    if (this.allowedHosts.has(host)) return addresses;
    const refused = addresses.find((a) => !this.allowsAddress(a.address));
    if (refused)
      throw new CallbackForbiddenError(
        `callback host ${host} resolves to a forbidden address (${refused.address})`,
      );
    return addresses;
  }
}
