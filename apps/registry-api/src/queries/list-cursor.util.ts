import { createHmac, timingSafeEqual } from 'node:crypto';

const MAC_BYTES = 16;

/**
 * Opaque list cursors: the sort key of the last row of a page (a keyset position), as base64url
 * JSON, signed with a key derived from ADMIN_TOKEN, so a cursor that was altered or made up is
 * refused (400) instead of being read as some other position. Replicas share the token, so any of
 * them accepts another's cursors; rotating the token invalidates the cursors in flight.
 */
export class ListCursorCodec {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = createHmac('sha256', secret).update('switchboard registry list cursor v1').digest();
  }

  encode(list: string, position: string[]): string {
    const body = Buffer.from(JSON.stringify([list, ...position])).toString('base64url');
    return `${body}.${this.mac(body).toString('base64url')}`;
  }

  /** The position, or undefined when the cursor was not made by {@link encode} for this list. */
  decode(list: string, cursor: string, arity: number): string[] | undefined {
    const [body, mac, extra] = cursor.split('.');
    if (!body || !mac || extra !== undefined) return undefined;
    const given = Buffer.from(mac, 'base64url');
    // Canonical base64url only: otherwise the unused low bits of the last character could change unnoticed.
    if (given.length !== MAC_BYTES || given.toString('base64url') !== mac || !timingSafeEqual(given, this.mac(body))) return undefined;
    const json = Buffer.from(body, 'base64url');
    if (json.toString('base64url') !== body) return undefined;
    let value: unknown;
    try {
      value = JSON.parse(json.toString('utf8'));
    } catch {
      return undefined;
    }
    if (!Array.isArray(value) || value.length !== arity + 1 || value[0] !== list || !value.every((v) => typeof v === 'string')) return undefined;
    return value.slice(1) as string[];
  }

  private mac(body: string): Buffer {
    return createHmac('sha256', this.key).update(body).digest().subarray(0, MAC_BYTES);
  }
}
