import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { DeregisterCommandDto, FieldError, parseWith, RegistrySnapshot, ReportHealthDto, SubjectSpace } from '@switchboard/contracts';
import { childTraceparent, decodeJsonObject, encodeJson, MAX_COMMAND_BYTES, MessageRejected, Msg, NatsClient, Subscription } from '@switchboard/messaging';
import { RegistryMetricsService } from '../observability/registry-metrics.service';
import { SUBJECTS } from '../registry-api.tokens';
import { RegistryErrorCode, RegistryException } from './registry.exception';
import { RegistryQueries } from '../queries/registry-queries.service';
import { InstanceRegistryService } from './instance-registry.service';

const CHUNK_BYTES = 512 * 1024;
/** Instances read per query while a snapshot is sent: a few milliseconds of work each. */
const SNAPSHOT_PAGE_SIZE = 1000;

/**
 * registry-api's request/reply commands, shared by its replicas through a queue group:
 * - `registry.cmd.snapshot`: every instance and tombstone plus the highest revision, in chunks (list-then-watch consumers);
 * - `registry.cmd.revision`: the highest revision (their drift check);
 * - `registry.cmd.reportHealth`: the prober's verdict, applied as a status change (registry-api stays
 *   the only writer; the statusChanged event follows);
 * - `registry.cmd.deregister`: pruning of an instance silent for too long.
 * Replies are `{ ok: true, … }` or `{ ok: false, error: { code, message } }` (snapshot and revision
 * answer their payload directly).
 */
@Injectable()
export class RegistryCommandsHandler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(RegistryCommandsHandler.name);
  private readonly subscriptions: Subscription[] = [];

  constructor(
    private readonly nats: NatsClient,
    private readonly registry: InstanceRegistryService,
    private readonly queries: RegistryQueries,
    private readonly metrics: RegistryMetricsService,
    @Inject(SUBJECTS) private readonly subjects: SubjectSpace,
  ) {}

  onApplicationBootstrap(): void {
    this.answerInChunks(this.subjects.snapshotCommand);
    this.answer(this.subjects.revisionCommand, async () => ({ revision: await this.queries.highestRevision() }));
    this.answer(this.subjects.reportHealthCommand, async (msg) => {
      const command = validated(ReportHealthDto, msg);
      const result = await this.registry.updateStatus(command.serviceId, { status: command.status, reason: command.reason }, traceOf(msg));
      return { ok: true, changed: result.changed, revision: result.instance.revision };
    });
    this.answer(this.subjects.deregisterCommand, async (msg) => {
      const command = validated(DeregisterCommandDto, msg);
      this.logger.log(`deregistering ${command.serviceId} on request: ${command.reason ?? 'no reason given'}`);
      return { ok: true, ...(await this.registry.deregister(command.serviceId, traceOf(msg))) };
    });
  }

  onApplicationShutdown(): void {
    for (const subscription of this.subscriptions) subscription.unsubscribe();
  }

  private answer(subject: string, work: (msg: Msg) => Promise<unknown>): void {
    this.listen(subject, async (msg) => {
      // Even a command without parameters refuses a payload that is not a small JSON object before any query runs.
      decodeJsonObject(msg.data, MAX_COMMAND_BYTES);
      msg.respond(encodeJson(await work(msg)));
    });
  }

  /**
   * The snapshot can outgrow one NATS message (1 MiB by default, ~1,000 instances): it goes out as
   * chunks of whole instances and tombstones under CHUNK_BYTES each, then an empty sentinel. Every
   * chunk carries the snapshot's revision. All are read in one transaction, in pages of
   * SNAPSHOT_PAGE_SIZE instances, and each chunk is sent as soon as it is full: the requester applies
   * the first instances while the rest are read, and registry-api's event loop is never held for the
   * whole registry (at 100,000 instances that would be seconds).
   */
  private answerInChunks(subject: string): void {
    this.listen(subject, async (msg) => {
      decodeJsonObject(msg.data, MAX_COMMAND_BYTES);
      let current: RegistrySnapshot = { revision: 0, instances: [], tombstones: [] };
      let bytes = 0;
      const room = (size: number) => {
        if (bytes && bytes + size > CHUNK_BYTES) {
          msg.respond(encodeJson(current));
          current = { revision: current.revision, instances: [], tombstones: [] };
          bytes = 0;
        }
        bytes += size;
      };
      await this.queries.snapshotPages(
        SNAPSHOT_PAGE_SIZE,
        ({ revision, tombstones }) => {
          current.revision = revision;
          for (const tombstone of tombstones) {
            // Ids are subject-safe characters: JSON needs no escaping, so this size is exact enough.
            room(tombstone[0].length + 24);
            current.tombstones?.push(tombstone);
          }
        },
        (instances) => {
          for (const instance of instances) {
            room(Buffer.byteLength(JSON.stringify(instance)));
            current.instances.push(instance);
          }
        },
      );
      msg.respond(encodeJson(current));
      msg.respond(new Uint8Array(0));
    });
  }

  /**
   * Every failure is answered (`ok: false`), so a requester never waits out its timeout. A refused
   * payload is then rethrown for NatsClient to count and log; other failures (PostgreSQL down, an
   * unknown instance) are answers, not bad messages.
   */
  private listen(subject: string, handle: (msg: Msg) => Promise<void>): void {
    const subscription = this.nats.subscribe(
      subject,
      (msg) =>
        handle(msg).catch((error: Error) => {
          const exception = error instanceof MessageRejected ? RegistryException.validation([{ field: '(body)', reason: error.message }]) : error;
          const code = exception instanceof RegistryException ? exception.code : 'COMMAND_FAILED';
          if (!(exception instanceof RegistryException)) this.logger.error(`${subject} failed: ${error.message}`);
          try {
            msg.respond(encodeJson({ ok: false, error: { code, message: exception.message, errors: (exception as RegistryException).errors } }));
          } catch (respondError) {
            this.logger.error(`${subject}: could not answer: ${(respondError as Error).message}`);
          }
          if (error instanceof MessageRejected) throw error;
          if (exception instanceof RegistryException && exception.code === RegistryErrorCode.ValidationFailed) throw new MessageRejected('invalid', exception.message);
        }),
      { queue: this.subjects.queueGroup('registry-api'), rejections: this.metrics.messagesRejected },
    );
    this.subscriptions.push(subscription);
  }
}

function validated<T extends object>(cls: new () => T, msg: Msg): T {
  const parsed = parseWith(cls, decodeJsonObject(msg.data, MAX_COMMAND_BYTES));
  if (!parsed.ok) throw RegistryException.validation(parsed.errors as FieldError[]);
  return parsed.value;
}

function traceOf(msg: Msg): string {
  return childTraceparent(msg.headers?.get('traceparent') || undefined);
}
