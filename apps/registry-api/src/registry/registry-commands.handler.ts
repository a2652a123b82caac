import { Logger } from '@nestjs/common';
import { Ctx, MessagePattern, NatsContext, Payload } from '@nestjs/microservices';
import { DeregisterCommandDto, FieldError, parseWith, ReportHealthDto, SubjectSpace } from '@switchboard/contracts';
import type { SnapshotView } from '@switchboard/persistence';
import { childTraceparent, MAX_COMMAND_BYTES, MessageRejected, NatsClient } from '@switchboard/messaging';
import { CommandFailure, CommandPatternExtras, JsonPayloadPipe, NatsController } from '@switchboard/messaging/nest';
import { Observable } from 'rxjs';
import { RegistryErrorCode, RegistryException } from './registry.exception';
import { RegistryQueries } from '../queries/registry-queries.service';
import { InstanceRegistryService } from './instance-registry.service';

/** Room left in a chunk for its envelope (`{"revision":…,"instances":[…],"tombstones":[…]}`). */
const CHUNK_ENVELOPE_BYTES = 4096;
/** Instances read per query while a snapshot is sent: PostgreSQL builds their JSON, a few milliseconds each page. */
const SNAPSHOT_PAGE_SIZE = 2000;

/** The patterns: unprefixed subjects (NatsCommandServer applies SUBJECT_PREFIX). */
const COMMANDS = new SubjectSpace();
/** Even a command without parameters refuses a payload that is not a small JSON object before any query runs. */
const body = new JsonPayloadPipe(MAX_COMMAND_BYTES);
const logger = new Logger('RegistryCommandsHandler');

/**
 * Every failure is answered (`{ ok: false, error: { code, message } }`), so a requester never waits
 * out its timeout. A refused payload (not a small JSON object, or failing the DTO) is also counted in
 * `registry_messages_rejected_total`; other failures (PostgreSQL down, an unknown instance) are
 * answers, not bad messages.
 */
export function registryCommandFailure(error: unknown, subject: string): CommandFailure {
  const exception = error instanceof MessageRejected ? RegistryException.validation([{ field: '(body)', reason: error.message }]) : error;
  const code = exception instanceof RegistryException ? exception.code : 'COMMAND_FAILED';
  const message = exception instanceof Error ? exception.message : String(exception);
  if (!(exception instanceof RegistryException)) logger.error(`${subject} failed: ${message}`);
  const reply = { ok: false, error: { code, message, errors: (exception as RegistryException).errors } };
  const rejected =
    error instanceof MessageRejected ? error : code === RegistryErrorCode.ValidationFailed ? new MessageRejected('invalid', message) : undefined;
  return new CommandFailure(reply, rejected);
}

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
@NatsController(registryCommandFailure)
export class RegistryCommandsHandler {
  private readonly logger = new Logger(RegistryCommandsHandler.name);

  constructor(
    private readonly nats: NatsClient,
    private readonly registry: InstanceRegistryService,
    private readonly queries: RegistryQueries,
  ) {}

  @MessagePattern(COMMANDS.revisionCommand)
  async revision(@Payload(body) _command: Record<string, unknown>): Promise<{ revision: number }> {
    return { revision: await this.queries.highestRevision() };
  }

  @MessagePattern(COMMANDS.reportHealthCommand)
  async reportHealth(@Payload(body) payload: Record<string, unknown>, @Ctx() ctx: NatsContext): Promise<{ ok: true; changed: boolean; revision: number }> {
    const command = validated(ReportHealthDto, payload);
    const result = await this.registry.updateStatus(command.serviceId, { status: command.status, reason: command.reason }, traceOf(ctx));
    return { ok: true, changed: result.changed, revision: result.instance.revision };
  }

  @MessagePattern(COMMANDS.deregisterCommand)
  async deregister(@Payload(body) payload: Record<string, unknown>, @Ctx() ctx: NatsContext): Promise<object> {
    const command = validated(DeregisterCommandDto, payload);
    this.logger.log(`deregistering ${command.serviceId} on request: ${command.reason ?? 'no reason given'}`);
    return { ok: true, ...(await this.registry.deregister(command.serviceId, traceOf(ctx))) };
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
  @MessagePattern(COMMANDS.snapshotCommand, { chunked: true } satisfies CommandPatternExtras)
  snapshot(@Payload(body) payload: Record<string, unknown>): Observable<Uint8Array> {
    const view = snapshotViewOf(payload);
    const limit = chunkLimit(this.nats.connection.info?.max_payload);
    return new Observable<Uint8Array>((subscriber) => {
      let revision = 0;
      let parts: string[] = [];
      let tombstones: [string, number][] = [];
      let bytes = 0;
      const send = () => {
        subscriber.next(Buffer.from(`{"revision":${revision},"instances":[${parts.join(',')}],"tombstones":${JSON.stringify(tombstones)}}`));
        parts = [];
        tombstones = [];
        bytes = 0;
      };
      // +1: the comma between two entries.
      const room = (size: number) => {
        if (bytes && bytes + size + 1 > limit) send();
        bytes += size + 1;
      };
      this.queries
        .snapshotPages(
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
        )
        .then(
          () => {
            send();
            subscriber.complete();
          },
          (error: unknown) => subscriber.error(error),
        );
    });
  }
}

function validated<T extends object>(cls: new () => T, payload: Record<string, unknown>): T {
  const parsed = parseWith(cls, payload);
  if (!parsed.ok) throw RegistryException.validation(parsed.errors as FieldError[]);
  return parsed.value;
}

function traceOf(ctx: NatsContext): string {
  const headers = ctx.getHeaders() as { get(key: string): string } | undefined;
  return childTraceparent(headers?.get('traceparent') || undefined);
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
