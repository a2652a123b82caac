import { INestMicroservice, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, CustomStrategy, EventPattern, MessagePattern, NatsContext, Payload } from '@nestjs/microservices';
import { SubjectSpace } from '@switchboard/contracts';
import { createTestEnvironment, TestEnvironment, waitFor } from '@switchboard/testing';
import { from, Observable } from 'rxjs';
import { NatsClient } from './nats.client';
import { CommandFailure, JsonPayloadPipe, NatsCommandServer, NatsController } from './nats-command.server';
import { MessageRejected, MessageRejectReason, RejectionCounter } from './untrusted-message.util';

const served: string[] = [];
const events: string[] = [];

@NatsController((error, subject) =>
  error instanceof MessageRejected
    ? new CommandFailure({ ok: false, error: { code: 'BAD', message: error.message } }, error)
    : new CommandFailure({ ok: false, error: { code: 'FAILED', message: `${subject}: ${(error as Error).message}` } }),
)
class DemoCommands {
  @MessagePattern('demo.cmd.echo')
  echo(@Payload(new JsonPayloadPipe(1024)) body: Record<string, unknown>, @Ctx() ctx: NatsContext): object {
    served.push(ctx.getSubject());
    return { ok: true, echo: body };
  }

  @MessagePattern('demo.cmd.fail')
  async fail(): Promise<never> {
    throw new Error('database down');
  }

  @MessagePattern('demo.cmd.parts', { chunked: true })
  parts(): Observable<object> {
    return from([{ part: 1 }, { part: 2 }]);
  }
}

@NatsController()
class DemoEvents {
  @EventPattern('demo.events.*')
  event(@Payload() data: Uint8Array, @Ctx() ctx: NatsContext): void {
    if (ctx.getSubject().endsWith('.bad')) throw new MessageRejected('invalid', 'a bad event');
    events.push(new TextDecoder().decode(data));
  }
}

@Module({ controllers: [DemoCommands, DemoEvents] })
class DemoModule {}

/**
 * NatsCommandServer on its own: handlers found by Nest, subjects under the app's prefix, one replica
 * of a queue group answering, failures answered through the controller's filter and counted.
 */
describe('NatsCommandServer (real NATS)', () => {
  let env: TestEnvironment;
  let subjects: SubjectSpace;
  let caller: NatsClient;
  const apps: { app: INestMicroservice; nats: NatsClient }[] = [];
  const counted: { subject: string; reason: MessageRejectReason }[] = [];
  const counter: RejectionCounter = { inc: (labels) => counted.push(labels) };

  const startReplica = async () => {
    const nats = await NatsClient.connect({ servers: env.natsUrl, name: `demo-${apps.length}` });
    const app = await NestFactory.createMicroservice<CustomStrategy>(DemoModule, {
      strategy: new NatsCommandServer({ nats, subjects, queueGroupOf: 'demo', rejections: counter }),
      logger: false,
    });
    await app.listen();
    apps.push({ app, nats });
  };

  beforeAll(async () => {
    env = await createTestEnvironment('cmdserver');
    subjects = new SubjectSpace(env.subjectPrefix);
    caller = await NatsClient.connect({ servers: env.natsUrl, name: 'demo-caller' });
    await startReplica();
    await startReplica();
  });
  afterAll(async () => {
    for (const { app, nats } of apps) {
      await app.close();
      await nats.close();
    }
    await caller?.close();
    await env?.dispose();
  });

  it('answers on the prefixed subject only, and one replica of the queue group answers each request', async () => {
    served.length = 0;
    for (let i = 0; i < 20; i++) expect(await caller.request(`${subjects.prefix}.demo.cmd.echo`, { i })).toEqual({ ok: true, echo: { i } });
    expect(served).toHaveLength(20);
    expect(new Set(served)).toEqual(new Set([`${subjects.prefix}.demo.cmd.echo`]));
    await expect(caller.request('demo.cmd.echo', {}, 1000)).rejects.toMatchObject({ code: '503' });
  });

  it("answers a failure in the controller's shape, counting only a refused message", async () => {
    counted.length = 0;
    expect(await caller.request(`${subjects.prefix}.demo.cmd.fail`, {})).toEqual({ ok: false, error: { code: 'FAILED', message: `${subjects.prefix}.demo.cmd.fail: database down` } });
    expect(counted).toEqual([]);
    const data = new TextEncoder().encode('not json');
    const reply = await caller.connection.request(`${subjects.prefix}.demo.cmd.echo`, data, { timeout: 5000 });
    expect(JSON.parse(new TextDecoder().decode(reply.data))).toEqual({ ok: false, error: { code: 'BAD', message: 'payload is not JSON' } });
    await waitFor(async () => counted.length === 1, 5000, 'the refusal to be counted');
    expect(counted).toEqual([{ subject: `${subjects.prefix}.demo.cmd.echo`, reason: 'not_json' }]);
  });

  it('sends each value of a chunked answer, then one empty message', async () => {
    expect(await caller.requestChunks(`${subjects.prefix}.demo.cmd.parts`, {})).toEqual([{ part: 1 }, { part: 2 }]);
  });

  it('hands events to @EventPattern handlers; a refused one is counted and the next still arrives', async () => {
    counted.length = 0;
    events.length = 0;
    caller.publish(`${subjects.prefix}.demo.events.bad`, { n: 0 });
    caller.publish(`${subjects.prefix}.demo.events.good`, { n: 1 });
    await waitFor(async () => events.length === 1 && counted.length === 1, 5000, 'the good event and the counted bad one');
    expect(events).toEqual(['{"n":1}']);
    expect(counted).toEqual([{ subject: `${subjects.prefix}.demo.events.*`, reason: 'invalid' }]);
  });
});
