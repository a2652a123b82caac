import { isIP as isIpOf, registerDecorator, ValidationArguments, ValidationOptions } from 'class-validator';

/**
 * `REGISTRY_ALLOWED_ENDPOINTS`: which addresses may be registered (the prober GETs them, the router
 * POSTs client bodies to them). Comma-separated entries, each one of
 * - a CIDR (`10.0.0.0/8`, `fd00::/8`) or a single IP (`10.1.2.3`, `::1`);
 * - an exact host name (`vllm.internal`), compared case-insensitively;
 * - a host pattern `*.svc.cluster.local`: any name below that suffix, one label or more
 *   (`a.svc.cluster.local`, `a.b.svc.cluster.local`), not the suffix itself;
 * followed optionally by `:port` or `:low-high`; an IPv6 address or CIDR takes brackets when it
 * has a port (`[fd00::/8]:8000-8099`). No port: any port.
 * Host names are matched as registered: DNS is trusted (a name in an allowed zone may resolve to
 * any address). Names that a URL parser reads as an IPv4 address (`0x7f000001`, `127.1`) are
 * matched as that address.
 */
function isIP(text: string): 0 | 4 | 6 {
  return isIpOf(text, 4) ? 4 : isIpOf(text, 6) ? 6 : 0;
}

type HostRule =
  | { kind: 'cidr'; family: 4 | 6; network: bigint; prefix: number }
  | { kind: 'host'; name: string }
  | { kind: 'suffix'; suffix: string };

interface EndpointRule {
  text: string;
  host: HostRule;
  ports?: [number, number];
}

export type EndpointVerdict = 'allowed' | 'host-not-allowed' | 'port-not-allowed';

export class EndpointAllowlist {
  private constructor(private readonly rules: EndpointRule[]) {}

  /** Throws an Error naming the first bad entry. Empty text: an empty list (see {@link isEmpty}). */
  static parse(text: string): EndpointAllowlist {
    const entries = text.split(',').map((e) => e.trim()).filter(Boolean);
    return new EndpointAllowlist(entries.map(parseEntry));
  }

  /** No rules: every endpoint is allowed (the variable is unset). */
  get isEmpty(): boolean {
    return this.rules.length === 0;
  }

  get size(): number {
    return this.rules.length;
  }

  /** Whether `host:port` may be registered; when not, whether no rule names the host or none allows the port. */
  check(host: string, port: number): EndpointVerdict {
    if (this.isEmpty) return 'allowed';
    const target = canonicalTarget(host);
    let hostMatched = false;
    for (const rule of this.rules) {
      if (!target || !hostMatches(rule.host, target)) continue;
      hostMatched = true;
      if (!rule.ports || (port >= rule.ports[0] && port <= rule.ports[1])) return 'allowed';
    }
    return hostMatched ? 'port-not-allowed' : 'host-not-allowed';
  }
}

/** A config validator: the value must parse as an allowlist; the message names the bad entry. */
export function IsEndpointAllowlist(options?: ValidationOptions): PropertyDecorator {
  return (target, propertyKey) =>
    registerDecorator({
      name: 'isEndpointAllowlist',
      target: target.constructor,
      propertyName: propertyKey as string,
      options,
      validator: {
        validate: (value: unknown) => typeof value === 'string' && allowlistProblem(value) === undefined,
        defaultMessage: (args: ValidationArguments) =>
          `${args.property}: ${typeof args.value === 'string' ? allowlistProblem(args.value) : 'must be a string'}`,
      },
    });
}

function allowlistProblem(text: string): string | undefined {
  try {
    EndpointAllowlist.parse(text);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

function parseEntry(entry: string): EndpointRule {
  const fail = (why: string): never => {
    throw new Error(`entry "${entry}" ${why} (expected CIDR, IP, host or *.suffix, with optional :port or :low-high)`);
  };
  let hostPart = entry;
  let portPart: string | undefined;
  if (entry.startsWith('[')) {
    const close = entry.indexOf(']');
    if (close < 0) fail('has an unclosed "["');
    hostPart = entry.slice(1, close);
    const rest = entry.slice(close + 1);
    if (rest) {
      if (!rest.startsWith(':')) fail('has text after "]" that is not a port');
      portPart = rest.slice(1);
    }
  } else if ((entry.match(/:/g) ?? []).length === 1) {
    [hostPart, portPart] = entry.split(':');
  }
  const ports = portPart === undefined ? undefined : parsePorts(portPart) ?? fail('has a bad port or port range');
  return { text: entry, host: parseHost(hostPart) ?? fail('is not a CIDR, IP, host name or *.suffix pattern'), ports };
}

function parsePorts(text: string): [number, number] | undefined {
  const match = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(text);
  if (!match) return undefined;
  const low = Number(match[1]);
  const high = match[2] === undefined ? low : Number(match[2]);
  return low >= 1 && high <= 65535 && low <= high ? [low, high] : undefined;
}

function parseHost(text: string): HostRule | undefined {
  const slash = text.indexOf('/');
  if (slash >= 0) {
    const address = text.slice(0, slash);
    const prefixText = text.slice(slash + 1);
    const family = isIP(address);
    if (!family || !/^[0-9]{1,3}$/.test(prefixText)) return undefined;
    const prefix = Number(prefixText);
    const bits = family === 4 ? 32 : 128;
    if (prefix > bits) return undefined;
    return { kind: 'cidr', family: family as 4 | 6, network: maskTo(toBigInt(address, family as 4 | 6), prefix, bits), prefix };
  }
  const family = isIP(text);
  if (family) return { kind: 'cidr', family: family as 4 | 6, network: toBigInt(text, family as 4 | 6), prefix: family === 4 ? 32 : 128 };
  const name = text.toLowerCase().replace(/\.$/, '');
  if (name.startsWith('*.')) {
    const suffix = name.slice(2);
    return suffix.split('.').every((l) => LABEL.test(l)) ? { kind: 'suffix', suffix: `.${suffix}` } : undefined;
  }
  return name.split('.').every((l) => LABEL.test(l)) ? { kind: 'host', name } : undefined;
}

type Target = { kind: 'ip'; family: 4 | 6; value: bigint } | { kind: 'name'; name: string };

/** The host as an HTTP client will read it: IPv4-mapped IPv6 and URL-parser IPv4 forms become IPv4. */
function canonicalTarget(host: string): Target | undefined {
  const bare = host.replace(/^\[|\]$/g, '');
  if (isIP(bare) === 6) {
    const value = toBigInt(bare, 6);
    // ::ffff:a.b.c.d reaches the IPv4 address a.b.c.d.
    if (value >> 32n === 0xffffn) return { kind: 'ip', family: 4, value: value & 0xffffffffn };
    return { kind: 'ip', family: 6, value };
  }
  // Through the URL parser, as the prober's and router's HTTP clients will read it (010.0.0.1 is 8.0.0.1 there).
  let parsed: string;
  try {
    parsed = new URL(`http://${bare}`).hostname;
  } catch {
    return undefined;
  }
  if (isIP(parsed) === 4) return { kind: 'ip', family: 4, value: toBigInt(parsed, 4) };
  return { kind: 'name', name: parsed.toLowerCase().replace(/\.$/, '') };
}

function hostMatches(rule: HostRule, target: Target): boolean {
  if (rule.kind === 'cidr') {
    if (target.kind !== 'ip' || target.family !== rule.family) return false;
    const bits = rule.family === 4 ? 32 : 128;
    return maskTo(target.value, rule.prefix, bits) === rule.network;
  }
  if (target.kind !== 'name') return false;
  return rule.kind === 'host' ? target.name === rule.name : target.name.endsWith(rule.suffix);
}

function maskTo(value: bigint, prefix: number, bits: number): bigint {
  const hostBits = BigInt(bits - prefix);
  return (value >> hostBits) << hostBits;
}

function toBigInt(address: string, family: 4 | 6): bigint {
  if (family === 4) return address.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
  let text = address.toLowerCase();
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  // A trailing dotted IPv4 part (::ffff:10.0.0.1) becomes two hextets.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const v4 = toBigInt(dotted[1], 4);
    text = `${text.slice(0, dotted.index)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const headParts = head ? head.split(':') : [];
  const tailParts = tail ? tail.split(':') : [];
  const missing = 8 - headParts.length - tailParts.length;
  const parts = [...headParts, ...(tail === undefined ? [] : Array<string>(missing).fill('0')), ...tailParts];
  return parts.reduce((acc, part) => (acc << 16n) | BigInt(parseInt(part || '0', 16)), 0n);
}
