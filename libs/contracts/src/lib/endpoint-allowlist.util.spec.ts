import { validateSync } from 'class-validator';
import { EndpointAllowlist, IsEndpointAllowlist } from './endpoint-allowlist.util';

describe('EndpointAllowlist', () => {
  const list = EndpointAllowlist.parse(
    '10.0.0.0/8, 192.168.1.7:8000, fd00::/8, [2001:db8::/32]:443, [::1]:9000-9010, vllm.internal:8000-8099, *.svc.cluster.local, *.corp.example:443',
  );

  it.each([
    ['10.1.2.3', 22],
    ['10.255.255.255', 65535],
    ['192.168.1.7', 8000],
    ['fd12:3456::1', 80],
    ['2001:db8:0:1::5', 443],
    ['::1', 9005],
    ['VLLM.internal', 8042],
    ['llama.system.svc.cluster.local', 8000],
    ['a.b.svc.cluster.local.', 1],
    ['api.corp.example', 443],
    ['::ffff:10.9.9.9', 80],
    ['0x0a000001', 80],
  ])('allows %s:%d', (host, port) => {
    expect(list.check(host, port)).toBe('allowed');
  });

  it.each([
    ['11.0.0.1', 80, 'host-not-allowed'],
    ['192.168.1.8', 8000, 'host-not-allowed'],
    ['192.168.1.7', 8001, 'port-not-allowed'],
    ['fe80::1', 80, 'host-not-allowed'],
    ['2001:db8::1', 80, 'port-not-allowed'],
    ['::1', 9011, 'port-not-allowed'],
    ['vllm.internal', 8100, 'port-not-allowed'],
    ['vllm.internal.evil.example', 8000, 'host-not-allowed'],
    ['svc.cluster.local', 80, 'host-not-allowed'],
    ['evilsvc.cluster.local', 80, 'host-not-allowed'],
    ['api.corp.example', 80, 'port-not-allowed'],
    ['127.0.0.1', 80, 'host-not-allowed'],
    ['::ffff:127.0.0.1', 80, 'host-not-allowed'],
    ['localhost', 80, 'host-not-allowed'],
  ])('refuses %s:%d (%s)', (host, port, verdict) => {
    expect(list.check(host, port)).toBe(verdict);
  });

  it('allows everything when empty (the variable unset)', () => {
    const empty = EndpointAllowlist.parse(' , ');
    expect(empty.isEmpty).toBe(true);
    expect(empty.check('169.254.169.254', 80)).toBe('allowed');
  });

  it('a bare address is a /32 or /128, and a CIDR is normalised to its network', () => {
    const single = EndpointAllowlist.parse('10.0.0.5,10.1.2.3/16');
    expect(single.check('10.0.0.5', 1)).toBe('allowed');
    expect(single.check('10.0.0.6', 1)).toBe('host-not-allowed');
    expect(single.check('10.1.200.1', 1)).toBe('allowed');
    expect(EndpointAllowlist.parse('0.0.0.0/0').check('8.8.8.8', 53)).toBe('allowed');
    expect(EndpointAllowlist.parse('0.0.0.0/0').check('::1', 53)).toBe('host-not-allowed');
  });

  it.each([
    ['10.0.0.0/33', 'entry "10.0.0.0/33" is not a CIDR'],
    ['10.0.0.0/8:0', 'entry "10.0.0.0/8:0" has a bad port or port range'],
    ['host:90-80', 'entry "host:90-80" has a bad port or port range'],
    ['host:70000', 'has a bad port'],
    ['*.', 'entry "*." is not a CIDR'],
    ['a.*.example', 'is not a CIDR'],
    ['[fd00::/8', 'has an unclosed "["'],
    ['[fd00::]x', 'has text after "]"'],
    ['http://x', 'entry "http://x"'],
    ['bad host', 'entry "bad host"'],
  ])('refuses the entry %s', (text, message) => {
    expect(() => EndpointAllowlist.parse(text)).toThrow(message);
  });

  it('validates a config variable, naming it and the bad entry', () => {
    class Env {
      @IsEndpointAllowlist()
      REGISTRY_ALLOWED_ENDPOINTS = '10.0.0.0/8,nope!';
    }
    const [error] = validateSync(new Env());
    expect(Object.values(error.constraints ?? {})).toEqual([expect.stringMatching(/^REGISTRY_ALLOWED_ENDPOINTS: entry "nope!" is not a CIDR, IP, host name or \*\.suffix pattern/)]);
  });
});
