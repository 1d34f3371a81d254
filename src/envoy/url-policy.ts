/**
 * SSRF policy for media URLs. The archiver fetches URLs an API hands it, on a machine with cloud credentials in
 * reach: only https to public addresses, unless ARCHIVER_ALLOW_INSECURE_URLS (tests, demos) allows http and
 * loopback/private hosts. Link-local and cloud metadata addresses are refused always.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import type { LookupFunction } from "node:net";
import ipaddr from "ipaddr.js";

export type AddressVerdict =
  "public" | "private" | "loopback" | "link-local" | "metadata" | "unspecified" | "reserved";

export interface UrlPolicy {
  allowInsecure: boolean;
}

const METADATA_IPS = new Set(["169.254.169.254", "fd00:ec2::254", "100.100.100.200"]);
const METADATA_HOSTS = new Set([
  "metadata.google.internal",
  "metadata",
  "metadata.azure.internal",
  "instance-data",
  "instance-data.ec2.internal",
]);

/**
 * An address as the policy sees it: IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d, deprecated but
 * still written as ::a9fe:a9fe to slip past checks) IPv6 become the IPv4 address they carry.
 */
export function normalizeAddress(ip: string): ipaddr.IPv4 | ipaddr.IPv6 {
  const addr = ipaddr.process(ip.replace(/^\[|\]$/g, "")); // process() unwraps IPv4-mapped IPv6
  if (addr.kind() !== "ipv6") return addr;
  const p = (addr as ipaddr.IPv6).parts;
  const compatible = p.slice(0, 6).every((x) => x === 0) && (p[6] !== 0 || p[7]! > 1);
  return compatible ? ipaddr.IPv4.parse(`${p[6]! >> 8}.${p[6]! & 255}.${p[7]! >> 8}.${p[7]! & 255}`) : addr;
}

export function classifyAddress(ip: string): AddressVerdict {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = normalizeAddress(ip);
  } catch {
    return "reserved";
  }
  const normalized = addr.toNormalizedString();
  if (METADATA_IPS.has(addr.toString()) || METADATA_IPS.has(normalized)) return "metadata";
  if (
    addr.kind() === "ipv6" &&
    (addr as ipaddr.IPv6).toNormalizedString() === ipaddr.parse("fd00:ec2::254").toNormalizedString()
  )
    return "metadata";
  switch (addr.range()) {
    case "unicast":
      return "public";
    case "private":
    case "uniqueLocal":
    case "carrierGradeNat":
      return "private";
    case "loopback":
      return "loopback";
    case "linkLocal":
      return "link-local";
    case "unspecified":
      return "unspecified";
    default:
      return "reserved";
  }
}

function verdictAllowed(v: AddressVerdict, policy: UrlPolicy): boolean {
  if (v === "public") return true;
  if (v === "private" || v === "loopback") return policy.allowInsecure;
  return false;
}

function refusalFor(v: AddressVerdict): string {
  switch (v) {
    case "loopback":
    case "private":
      return `refused: ${v} addresses are not allowed (set ARCHIVER_ALLOW_INSECURE_URLS=true for local testing)`;
    default:
      return `refused: ${v} addresses are never allowed`;
  }
}

export function checkUrl(
  raw: string,
  policy: UrlPolicy,
): { ok: true; url: URL } | { ok: false; reason: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: "refused: not a valid URL" };
  }
  if (url.protocol === "http:") {
    if (!policy.allowInsecure)
      return {
        ok: false,
        reason:
          "refused: http: URLs are not allowed (set ARCHIVER_ALLOW_INSECURE_URLS=true for local testing)",
      };
  } else if (url.protocol !== "https:") {
    return { ok: false, reason: `refused: ${url.protocol} URLs are never allowed` };
  }
  if (url.username || url.password)
    return { ok: false, reason: "refused: URLs with credentials are not allowed" };
  const host = url.hostname.toLowerCase().replace(/\.$/, "");
  if (METADATA_HOSTS.has(host))
    return { ok: false, reason: "refused: cloud metadata hosts are never allowed" };
  if (host === "localhost" || host.endsWith(".localhost")) {
    return policy.allowInsecure ? { ok: true, url } : { ok: false, reason: refusalFor("loopback") };
  }
  const literal = host.replace(/^\[|\]$/g, "");
  if (ipaddr.isValid(literal)) {
    const v = classifyAddress(literal);
    if (!verdictAllowed(v, policy)) return { ok: false, reason: refusalFor(v) };
  }
  return { ok: true, url };
}

type BaseLookup = (
  hostname: string,
  options: LookupOptions & { all: true },
  cb: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

/**
 * A dns.lookup for the media's connections (source/http.ts): resolves, then refuses any address the policy refuses, so a host
 * that passed checkUrl cannot resolve (or re-resolve: DNS rebinding) to a forbidden address.
 */
export function guardedLookup(
  policy: UrlPolicy,
  base: BaseLookup = dnsLookup as unknown as BaseLookup,
): LookupFunction {
  return ((hostname: string, options: LookupOptions, callback: (...args: unknown[]) => void) => {
    base(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err);
      const refused = addresses.find((a) => !verdictAllowed(classifyAddress(a.address), policy));
      if (refused || addresses.length === 0) {
        const v = refused ? classifyAddress(refused.address) : "reserved";
        const e = Object.assign(new Error(`${hostname} resolves to a ${v} address: ${refusalFor(v)}`), {
          code: "EURLREFUSED",
        });
        return callback(e);
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0]!;
      return callback(null, first.address, first.family);
    });
  }) as LookupFunction;
}
