import { printable } from '../output/format.util';

/** Why a fetch failed, in a few words: the socket error code (ECONNREFUSED, ENOTFOUND…), a timeout, or undici's reason. */
export function fetchFailure(error: unknown, timeoutMs: number): string {
  if ((error as Error)?.name === 'TimeoutError') return `no answer within ${timeoutMs / 1000} s`;
  const cause = (error as { cause?: { code?: string; message?: string; errors?: { code?: string }[] } })?.cause;
  return printable(cause?.code ?? cause?.errors?.[0]?.code ?? cause?.message ?? (error as Error)?.message ?? String(error));
}
