import ipaddr from "ipaddr.js";

/** One line of the policy: the first rule whose range holds an address decides. */
export interface PolicyRule {
  cidr: string;
  action: "allow" | "deny";
  /** Why, for error messages and the router's log. */
  reason: string;
}

/** The operator's settings (DYNROUTE_BACKEND_DENY, DYNROUTE_BACKEND_ALLOW), as CIDRs. */
export interface BackendPolicySettings {
  deny: readonly string[];
  allow: readonly string[];
}

/**
 * Ranges no backend may reach unless an operator allows them: the daemon's
 * and Redis' own machine, link-local and the clouds' other instance-metadata
 * addresses, addresses that are not a single host, and IPv6 forms that carry
 * an IPv4 address to a translator (which could lead back inside). Private
 * ranges stay allowed: a platform's backends are VMs on a private network.
 */
const DEFAULT_DENIED: ReadonlyArray<readonly [string, string]> = [
  ["0.0.0.0/8", "an unspecified address"],
  ["127.0.0.0/8", "a loopback address"],
  ["169.254.0.0/16", "a link-local address (cloud metadata lives there)"],
  ["100.100.100.200/32", "a cloud instance-metadata address (Alibaba Cloud)"],
  ["168.63.129.16/32", "a cloud platform address (Azure WireServer)"],
  ["192.0.0.192/32", "a cloud instance-metadata address (Oracle Cloud)"],
  ["224.0.0.0/4", "a multicast address"],
  ["240.0.0.0/4", "a reserved or broadcast address"],
  ["::/128", "an unspecified address"],
  ["::1/128", "a loopback address"],
  ["fd00:ec2::254/128", "a cloud instance-metadata address (AWS)"],
  ["fd20:ce::254/128", "a cloud instance-metadata address (Google Cloud)"],
  ["::/96", "an IPv4-compatible IPv6 address"],
  ["::ffff:0:0:0/96", "an IPv4-translated IPv6 address"],
  ["64:ff9b::/96", "a NAT64 address"],
  ["64:ff9b:1::/48", "a NAT64 address"],
  ["2002::/16", "a 6to4 address"],
  ["fe80::/10", "a link-local address"],
  ["fec0::/10", "a site-local address"],
  ["ff00::/8", "a multicast address"],
];

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

/**
 * Where backends may point. The daemon checks IP-literal backends with it at
 * write time; routers get the same rules (see RouteWriter.writePolicy) and
 * check every address they connect to, names' resolved addresses included.
 */
export class BackendPolicy {
  readonly rules: readonly PolicyRule[];
  private readonly ranges: Range[];

  /** Operator denials first (they beat every allowance), then allowances, then the defaults. */
  constructor(settings: BackendPolicySettings) {
    this.rules = [
      ...settings.deny.map((cidr) => ({ cidr: canonicalCidr(cidr), action: "deny" as const, reason: "DYNROUTE_BACKEND_DENY" })),
      ...settings.allow.map((cidr) => ({ cidr: canonicalCidr(cidr), action: "allow" as const, reason: "DYNROUTE_BACKEND_ALLOW" })),
      ...DEFAULT_DENIED.map(([cidr, reason]) => ({ cidr, action: "deny" as const, reason })),
    ];
    this.ranges = this.rules.map((r) => ipaddr.parseCIDR(r.cidr));
  }

  /** Why `address` (an IPv4 or IPv6 literal) is refused, or undefined when it is allowed. */
  refusal(address: string): string | undefined {
    // IPv4-mapped IPv6 (::ffff:127.0.0.1) is the IPv4 address it carries.
    const ip = ipaddr.process(address);
    const at = this.ranges.findIndex(([net, bits]) => net.kind() === ip.kind() && ip.match(net, bits));
    const rule = this.rules[at];
    if (!rule || rule.action === "allow") return undefined;
    if (rule.reason === "DYNROUTE_BACKEND_DENY") return `${address} is in ${rule.cidr}, which DYNROUTE_BACKEND_DENY refuses`;
    return `${address} is ${rule.reason} (${rule.cidr}), which backends may not reach; an operator can allow it with DYNROUTE_BACKEND_ALLOW=${rule.cidr}`;
  }

  /** The rules as routers read them from Redis: first match wins, no match allows. */
  toJSON(): { rules: readonly PolicyRule[] } {
    return { rules: this.rules };
  }
}

/** A CIDR or bare address in canonical form; throws a message fit for a configuration error. */
export function canonicalCidr(value: string): string {
  const text = value.includes("/") ? value : `${value}/${ipaddr.IPv6.isValid(value) && !ipaddr.IPv4.isValidFourPartDecimal(value) ? 128 : 32}`;
  if (!ipaddr.isValidCIDR(text)) throw new Error(`"${value}" is not a CIDR such as 10.0.0.0/8 or fd00::/8`);
  const [net, bits] = ipaddr.parseCIDR(text);
  const first = net.kind() === "ipv4" ? ipaddr.IPv4.networkAddressFromCIDR(text) : ipaddr.IPv6.networkAddressFromCIDR(text);
  return `${first.toString()}/${bits}`;
}
