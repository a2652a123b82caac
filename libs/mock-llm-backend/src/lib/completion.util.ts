/** Used when the prompt has no words, so a completion is never empty by accident. */
export const DEFAULT_WORDS: readonly string[] = ['lorem', 'ipsum', 'dolor', 'sit', 'amet'];

export const EMBEDDING_DIMENSIONS = 8;

const WORD = /\S+/g;

/** The first `limit` words of `text` (no more are needed: the completion cycles through them). */
export function firstWords(text: string, limit: number): string[] {
  const words: string[] = [];
  WORD.lastIndex = 0;
  for (let match = WORD.exec(text); match !== null && words.length < limit; match = WORD.exec(text)) words.push(match[0]);
  return words;
}

/** Whitespace-separated words stand in for tokens: deterministic, and obvious in test assertions. */
export function countWords(text: string): number {
  let count = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const space = c === 32 || (c >= 9 && c <= 13) || c === 160;
    if (!space && !inWord) count++;
    inWord = !space;
  }
  return count;
}

/** Token pieces as a stream would emit them; joined they read `w0 w1 w2 …`, the prompt's words cycled. */
export function completionPieces(promptText: string, tokens: number): string[] {
  const found = firstWords(promptText, Math.min(tokens, 4096));
  const words = found.length > 0 ? found : DEFAULT_WORDS;
  const pieces = new Array<string>(tokens);
  for (let i = 0; i < tokens; i++) pieces[i] = i === 0 ? words[0] : ' ' + words[i % words.length];
  return pieces;
}

/** The pieces joined, built without the array: the non-streaming answer on the hot path. */
export function completionText(promptText: string, tokens: number): string {
  if (tokens === 0) return '';
  const found = firstWords(promptText, Math.min(tokens, 4096));
  const words = found.length > 0 ? found : DEFAULT_WORDS;
  let text = words[0];
  for (let i = 1; i < tokens; i++) text += ' ' + words[i % words.length];
  return text;
}

export interface TokenBudget {
  tokens: number;
  finishReason: 'stop' | 'length';
}

/** The mock "wants" `completionTokens`; a smaller `max_tokens` cuts it short, as a real model hits its limit. */
export function tokenBudget(completionTokens: number, maxTokens: number | undefined): TokenBudget {
  if (maxTokens !== undefined && maxTokens < completionTokens) return { tokens: maxTokens, finishReason: 'length' };
  return { tokens: completionTokens, finishReason: 'stop' };
}

/** A unit vector derived from the text alone, so equal inputs embed equally across instances and runs. */
export function embedText(text: string, dimensions = EMBEDDING_DIMENSIONS): number[] {
  // FNV-1a seeds xorshift32.
  let state = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) state = Math.imul(state ^ text.charCodeAt(i), 0x01000193);
  state = state >>> 0 || 1;
  const vector = new Array<number>(dimensions);
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    const value = state / 0x7fffffff - 1;
    vector[i] = value;
    norm += value * value;
  }
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < dimensions; i++) vector[i] = Math.round((vector[i] / norm) * 1e6) / 1e6;
  return vector;
}

/** OpenAI's `encoding_format: 'base64'`: little-endian float32 bytes (the official clients ask for it by default). */
export function embeddingToBase64(vector: readonly number[]): string {
  const buffer = Buffer.allocUnsafe(vector.length * 4);
  for (let i = 0; i < vector.length; i++) buffer.writeFloatLE(vector[i], i * 4);
  return buffer.toString('base64');
}
