import { redactUrl, redactUrls, redactUrlsInText } from './redact-url.util';

describe('redactUrl', () => {
  it('hides user:password@ and token@, keeping scheme, host and port', () => {
    expect(redactUrl('nats://svc:secretpw@nats.internal:4222')).toBe('nats://***@nats.internal:4222');
    expect(redactUrl('nats://s3cr3t-token@10.0.0.1:4222')).toBe('nats://***@10.0.0.1:4222');
    expect(redactUrl('svc:secretpw@nats.internal:4222')).toBe('***@nats.internal:4222');
    expect(redactUrl('redis://:hunter2@cache:6379/0')).toBe('redis://***@cache:6379/0');
  });

  it('leaves a URL without credentials as it is', () => {
    expect(redactUrl('nats://127.0.0.1:4222')).toBe('nats://127.0.0.1:4222');
    expect(redactUrl('http://example.com/path@v2')).toBe('http://example.com/path@v2');
  });

  it('redacts every entry of a server list, and URLs inside free text', () => {
    expect(redactUrls('nats://a:pw1@n1:4222, nats://n2:4222,b:pw2@n3:4222')).toBe('nats://***@n1:4222, nats://n2:4222,***@n3:4222');
    expect(redactUrlsInText('connect to nats://a:pw1@n1:4222 failed; retry tls://b:pw2@n2:4443')).toBe('connect to nats://***@n1:4222 failed; retry tls://***@n2:4443');
  });
});
