import type { ConsumerDeserializer, ConsumerSerializer, IncomingEvent, IncomingRequest, OutgoingResponse } from '@nestjs/microservices';
import type { Msg } from 'nats';
import { encodeJson } from './nats.client';

/** The empty message that ends a chunked answer (`NatsClient.forEachChunk` stops on it). */
const SENTINEL = new Uint8Array(0);

/**
 * The wire of Switchboard's commands is plain JSON, as every non-Nest client (the SDK, admin-cli, the
 * routing table, the prober's command client) speaks it: the request body is the command itself, not
 * Nest's `{ pattern, data, id }` envelope, and the pattern is the subject the message came on. The
 * body reaches the handler as bytes: its size/UTF-8/JSON checks run in {@link JsonPayloadPipe}, so a
 * refusal passes through the controller's exception filter and is answered in the app's error shape.
 */
export class PlainJsonDeserializer implements ConsumerDeserializer {
  deserialize(msg: Msg, options?: { pattern?: string }): IncomingRequest | IncomingEvent {
    const pattern = options?.pattern ?? msg.subject;
    return msg.reply ? { pattern, data: msg.data, id: msg.reply } : { pattern, data: msg.data };
  }
}

/**
 * A reply is the handler's value as JSON, with nothing of Nest's `{ response, isDisposed, id }` around
 * it. Bytes pass as they are: the snapshot's chunks are JSON already (PostgreSQL built each row's text).
 * A packet with only `isDisposed` is the end of a chunked answer: the empty sentinel.
 */
export class PlainJsonSerializer implements ConsumerSerializer {
  serialize(packet: OutgoingResponse): Uint8Array {
    if (packet.response === undefined && packet.err === undefined) return SENTINEL;
    const value: unknown = packet.response !== undefined ? packet.response : packet.err;
    return value instanceof Uint8Array ? value : encodeJson(value);
  }
}
