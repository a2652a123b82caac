import { Logger } from '@nestjs/common';
import { createTestEnvironment, TestEnvironment, waitFor } from '@switchboard/testing';
import { NatsClient } from './nats.client';
import { MessageRejected, MessageRejectReason, RejectionCounter } from './untrusted-message.util';

/**
 * nats.js stops reading a connection whose subscription callback throws: every subject on it goes
 * unheard until a reconnect. NatsClient.subscribe must keep any handler failure from reaching it.
 */
describe('NatsClient.subscribe: a failing handler never deafens the connection (real NATS)', () => {
  let env: TestEnvironment;
  let receiver: NatsClient;
  let sender: NatsClient;

  beforeAll(async () => {
    env = await createTestEnvironment('subguard');
    receiver = await NatsClient.connect({ servers: env.natsUrl, name: 'subguard-receiver' });
    sender = await NatsClient.connect({ servers: env.natsUrl, name: 'subguard-sender' });
  });
  afterAll(async () => {
    await sender?.close();
    await receiver?.close();
    await env?.dispose();
  });

  it('keeps delivering after handlers throw, reject and refuse, counting each under the pattern and logging once', async () => {
    const pattern = `${env.subjectPrefix}guard.*`;
    const counted: { subject: string; reason: MessageRejectReason }[] = [];
    const counter: RejectionCounter = { inc: (labels) => counted.push(labels) };
    const logged = [jest.spyOn(Logger.prototype, 'warn'), jest.spyOn(Logger.prototype, 'error')];
    const good: string[] = [];
    const other: string[] = [];
    receiver.subscribe(
      pattern,
      (msg) => {
        const kind = msg.subject.split('.').pop();
        if (kind === 'throws') throw new RangeError('Maximum call stack size exceeded');
        if (kind === 'rejects') return Promise.reject(new Error('async failure'));
        if (kind === 'refuses') throw new MessageRejected('invalid', 'no');
        good.push(new TextDecoder().decode(msg.data));
        return undefined;
      },
      { rejections: counter },
    );
    // A second subscription on the same connection must not go deaf either.
    receiver.subscribe(`${env.subjectPrefix}other`, (msg) => other.push(new TextDecoder().decode(msg.data)));
    await receiver.connection.flush();

    const N = 20;
    for (let i = 0; i < N; i++) {
      for (const kind of ['throws', 'rejects', 'refuses']) sender.connection.publish(`${env.subjectPrefix}guard.${kind}`, new Uint8Array([1]));
    }
    sender.connection.publish(`${env.subjectPrefix}guard.ok`, new TextEncoder().encode('sentinel'));
    sender.connection.publish(`${env.subjectPrefix}other`, new TextEncoder().encode('sentinel'));
    await sender.connection.flush();

    await waitFor(() => good.includes('sentinel') && other.includes('sentinel'), 5000, 'the sentinels sent after the failures');
    await waitFor(() => counted.length === 3 * N || undefined, 5000, 'every failure to be counted');
    expect(counted.filter((c) => c.reason === 'handler_error')).toHaveLength(2 * N);
    expect(counted.filter((c) => c.reason === 'invalid')).toHaveLength(N);
    expect(new Set(counted.map((c) => c.subject))).toEqual(new Set([pattern]));
    // A flood is one line per pattern per interval, not one per message.
    const lines = logged.flatMap((spy) => spy.mock.calls.map((args) => String(args[0]))).filter((line) => line.includes('refused a message'));
    expect(lines).toHaveLength(1);
    for (const spy of logged) spy.mockRestore();
  });
});
