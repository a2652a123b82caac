import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { DeregisterCommandDto, FieldError, parseWith, ReportHealthDto, SubjectSpace } from '@switchboard/contracts';
import type { SnapshotView } from '@switchboard/persistence';
import { childTraceparent, decodeJsonObject, encodeJson, MAX_COMMAND_BYTES, MessageRejected, Msg, NatsClient, Subscription } from '@switchboard/messaging';
import { RegistryMetricsService } from '../observability/registry-metrics.service';
import { SUBJECTS } from '../registry-api.tokens';
import { RegistryErrorCode, RegistryException } from './registry.exception';
import { RegistryQueries } from '../queries/registry-queries.service';
import { InstanceRegistryService } from './instance-registry.service';

/** Room left in a chunk for its envelope (`{"revision":…,"instances":[…],"tombstones":[…]}`). */
const CHUNK_ENVELOPE_BYTES = 4096;
/** Instances read per query while a snapshot is sent: PostgreSQL builds their JSON, a few milliseconds each page. */
const SNAPSHOT_PAGE_SIZE = 2000;

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
   * The snapshot outgrows one NATS message (1 MiB by default): it goes out as chunks of whole
   * instances and tombstones, each under the server's max_payload, then an empty sentinel. Every chunk
   * carries the snapshot's revision. All are read in one transaction, in pages of SNAPSHOT_PAGE_SIZE
   * instances whose JSON PostgreSQL builds (registry-api only joins the texts), and each chunk is sent
   * as soon as it is full: the requester applies the first instances while the rest are read, and the
   * event loop is held only for one page at a time. `{ "view": "routing" }` asks for the fields a
   * routing table keeps (a third of the bytes); without it every field of the instance view.
   */
  private answerInChunks(subject: string): void {
    this.listen(subject, async (msg) => {
      const view = snapshotViewOf(decodeJsonObject(msg.data, MAX_COMMAND_BYTES));
      const limit = chunkLimit(this.nats.connection.info?.max_payload);
      let revision = 0;
      let parts: string[] = [];
      let tombstones: [string, number][] = [];
      let bytes = 0;
      const send = () => {
        msg.respond(Buffer.from(`{"revision":${revision},"instances":[${parts.join(',')}],"tombstones":${JSON.stringify(tombstones)}}`));
        parts = [];
        tombstones = [];
        bytes = 0;
      };
      // +1: the comma between two entries.
      const room = (size: number) => {
        if (bytes && bytes + size + 1 > limit) send();
        bytes += size + 1;
      };
      await this.queries.snapshotPages(
        SNAPSHOT_PAGE_SIZE,
        view,
        (head) => {
          revision = head.revision;
          for (const tombstone of head.tombstones) {
            // Ids are subject-safe characters: JSON needs no escaping, so this size is exact enough.
            room(tombstone[0].length + 24);
            tombstones.push(tombstone);
          }
        },
        (rows) => {
          for (const row of rows) {
            room(row.bytes);
            parts.push(row.json);
          }
        },
      );
      send();
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

/** `registry.cmd.snapshot`'s one parameter: `view`, absent (every field) or `routing`. */
function snapshotViewOf(command: Record<string, unknown>): SnapshotView {
  const view = command['view'];
  if (view === undefined || view === 'full') return 'full';
  if (view === 'routing') return 'routing';
  throw RegistryException.validation([{ field: 'view', reason: 'view must be one of: full, routing' }]);
}

/** A chunk's payload limit: the server's max_payload (1 MiB unless configured) less the envelope. */
function chunkLimit(maxPayload: number | undefined): number {
  const max = maxPayload ?? 1024 * 1024;
  return Math.max(max / 2, max - CHUNK_ENVELOPE_BYTES);
}
