import { applyDecorators, ArgumentsHost, Catch, Controller, Logger, PipeTransform, RpcExceptionFilter, UseFilters } from '@nestjs/common';
import { CustomTransportStrategy, MessageHandler, NatsContext, OutgoingResponse, Server } from '@nestjs/microservices';
import type { SubjectSpace } from '@switchboard/contracts';
import type { Msg, Subscription } from 'nats';
import { isObservable, Observable, throwError } from 'rxjs';
import { NatsClient } from './nats.client';
import { PlainJsonDeserializer, PlainJsonSerializer } from './plain-json.serializer';
import { decodeJsonObject, MessageRejected, RejectionCounter } from './untrusted-message.util';

/** `@MessagePattern(pattern, extras)`: how the answer of a command is sent. */
export interface CommandPatternExtras {
  /**
   * The handler returns an Observable of chunks: each value is one reply, then an empty message ends
   * the answer (`NatsClient.forEachChunk`, `RequestStrategy.SentinelMsg`). Without it, one reply.
   */
  chunked?: boolean;
}

/**
 * What a command controller's exception filter turns an exception into: the answer the requester
 * gets, and (when the message itself was at fault) the refusal that `<app>_messages_rejected_total`
 * counts. {@link NatsCommandServer} sends `reply` and hands `rejected` to NatsClient's guard.
 */
export class CommandFailure extends Error {
  constructor(
    readonly reply: unknown,
    readonly rejected?: MessageRejected,
  ) {
    super('command failed');
    this.name = 'CommandFailure';
  }
}

/** An app's answer to a failed command on `subject` (the concrete one, for its log lines). */
export type CommandFailureMapper = (error: unknown, subject: string) => CommandFailure;

/**
 * The exception filter of a NATS controller. Nest's default one replaces every exception that is not
 * an RpcException with `{ status: 'error', message: 'Internal server error' }`; this one keeps it, or
 * maps it with `toFailure` (each app's answer shapes).
 */
export function natsExceptionFilter(toFailure?: CommandFailureMapper): new () => RpcExceptionFilter {
  @Catch()
  class NatsExceptionFilter implements RpcExceptionFilter {
    catch(error: unknown, host: ArgumentsHost): Observable<never> {
      if (!toFailure || error instanceof CommandFailure) return throwError(() => error);
      const subject = host.switchToRpc().getContext<NatsContext | undefined>()?.getSubject() ?? '(unknown subject)';
      return throwError(() => toFailure(error, subject));
    }
  }
  return NatsExceptionFilter;
}

/**
 * A controller of NATS handlers for {@link NatsCommandServer}: commands pass `toFailure` (exception →
 * answer); event handlers leave it out, and what they throw reaches NatsClient's guard as it is.
 */
export function NatsController(toFailure?: CommandFailureMapper): ClassDecorator {
  return applyDecorators(Controller(), UseFilters(new (natsExceptionFilter(toFailure))()));
}

/**
 * `@Payload(new JsonPayloadPipe(max))`: an untrusted body decoded as a JSON object — size first, then
 * strict UTF-8, JSON, an object ({@link decodeJsonObject}); a refusal is a {@link MessageRejected}
 * for the controller's filter. DTO checks follow in the handler (`parseWith`).
 */
export class JsonPayloadPipe implements PipeTransform<Uint8Array, Record<string, unknown>> {
  constructor(private readonly maxBytes: number) {}

  transform(data: Uint8Array): Record<string, unknown> {
    return decodeJsonObject(data, this.maxBytes);
  }
}

export interface NatsCommandServerOptions {
  /** The app's connection: one per process, its credentials and inbox permissions, and its tracing. */
  nats: NatsClient;
  /** Patterns are unprefixed subjects (`new SubjectSpace().snapshotCommand`); this space's prefix (SUBJECT_PREFIX) is put before them. */
  subjects: SubjectSpace;
  /** The app whose replicas share each subject in a queue group (`subjects.queueGroup(app)`): one of them answers each request. */
  queueGroupOf?: string;
  /** `<app>_messages_rejected_total`. */
  rejections?: RejectionCounter;
}

/**
 * A `@nestjs/microservices` transport for `@MessagePattern`/`@EventPattern` handlers over the app's
 * own {@link NatsClient} rather than a second connection (Nest's ServerNats would open one, with its
 * own credentials, inbox and permissions to keep in step):
 * - every handler's subject is its pattern under the app's SubjectSpace, resolved at listen time, so
 *   SUBJECT_PREFIX works;
 * - subscriptions go through `NatsClient.subscribe`: a request runs in a server span continuing the
 *   caller's `traceparent`, and nothing a handler throws reaches nats.js's callback (counted, logged
 *   once a minute);
 * - the wire is plain JSON ({@link PlainJsonDeserializer}, {@link PlainJsonSerializer});
 * - a chunked answer ends with exactly one empty sentinel. Nest's `Server.send` folds its "disposed"
 *   mark into the last queued packet when one is waiting, so whether the end is a message of its own
 *   depends on timing; replies are therefore sent here, in order, one per value.
 */
export class NatsCommandServer extends Server implements CustomTransportStrategy {
  override transportId = Symbol('switchboard-nats-commands');
  protected override readonly logger = new Logger(NatsCommandServer.name);
  private readonly subscriptions: Subscription[] = [];

  constructor(private readonly options: NatsCommandServerOptions) {
    super();
    this.serializer = new PlainJsonSerializer();
    this.deserializer = new PlainJsonDeserializer();
  }

  /** Subscribes every registered pattern; Nest calls it from `startAllMicroservices()`. */
  listen(callback: () => void): void {
    for (const [pattern, handler] of this.messageHandlers) {
      const { subjects, queueGroupOf } = this.options;
      // SubjectSpace's rule: `<prefix>.<subject>`, or the subject itself without a prefix.
      const subject = subjects.prefix ? `${subjects.prefix}.${pattern}` : pattern;
      this.subscriptions.push(
        this.options.nats.subscribe(subject, (msg) => this.handle(pattern, subject, handler, msg), {
          queue: queueGroupOf === undefined ? undefined : subjects.queueGroup(queueGroupOf),
          rejections: this.options.rejections,
        }),
      );
    }
    callback();
  }

  close(): void {
    for (const subscription of this.subscriptions.splice(0)) subscription.unsubscribe();
  }

  on(): never {
    throw new Error('NatsCommandServer has no events of its own: NatsClient reports the connection');
  }

  unwrap<T>(): T {
    return this.options.nats.connection as T;
  }

  /** Settles once answered; rejects with what NatsClient is to count (a refused message, a bug). */
  private async handle(pattern: string, subject: string, handler: MessageHandler, msg: Msg): Promise<void> {
    const packet = await this.deserializer.deserialize(msg, { pattern });
    const ctx = new NatsContext([msg.subject, msg.headers]);
    const result = await handler(packet.data, ctx);
    if (handler.isEventHandler) {
      // Only an Observable (an exception the filter passed on) can fail from here: no Observable per event otherwise.
      if (!isObservable(result)) return;
      return new Promise<void>((resolve, reject) => result.subscribe({ error: (error: unknown) => reject(refusalOf(error)), complete: resolve }));
    }
    const result$ = this.transformToObservable(result);
    const chunked = (handler.extras as CommandPatternExtras | undefined)?.chunked === true;
    return new Promise<void>((resolve, reject) =>
      result$.subscribe({
        next: (response: unknown) => this.respond(subject, msg, { response }),
        error: (error: unknown) => {
          if (error instanceof CommandFailure) {
            this.respond(subject, msg, { response: error.reply });
            return error.rejected ? reject(error.rejected) : resolve();
          }
          // A controller without a command filter: still answered, and counted as a bug.
          this.respond(subject, msg, { response: { ok: false, error: { code: 'COMMAND_FAILED', message: 'the command failed' } } });
          reject(error instanceof Error ? error : new Error(JSON.stringify(error)));
        },
        complete: () => {
          if (chunked) this.respond(subject, msg, { isDisposed: true });
          resolve();
        },
      }),
    );
  }

  private respond(subject: string, msg: Msg, packet: Omit<OutgoingResponse, 'id'>): void {
    try {
      msg.respond(this.serializer.serialize({ ...packet, id: msg.reply ?? '' }));
    } catch (error) {
      // The connection closed under a running command: nothing can reach the requester, which times out.
      this.logger.error(`${subject}: could not answer: ${(error as Error).message}`);
    }
  }
}

function refusalOf(error: unknown): unknown {
  return error instanceof CommandFailure ? (error.rejected ?? new Error('event handler failed')) : error;
}
