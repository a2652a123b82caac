import { countWords } from './completion.util';
import { invalidRequest } from './openai.exception';

export interface ChatCompletionRequest {
  model: string;
  /** The text the answer echoes: the last user message (or the last message when no user spoke). */
  promptText: string;
  promptTokens: number;
  stream: boolean;
  includeUsage: boolean;
  maxTokens: number | undefined;
}

export interface CompletionRequest {
  model: string;
  promptText: string;
  promptTokens: number;
  stream: boolean;
  includeUsage: boolean;
  maxTokens: number | undefined;
}

export interface EmbeddingRequest {
  model: string;
  inputs: string[];
  promptTokens: number;
  base64: boolean;
}

type Json = Record<string, unknown>;

function requireObject(body: unknown): Json {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalidRequest('The request body must be a JSON object.');
  return body as Json;
}

function requireModel(body: Json): string {
  const model = body['model'];
  if (typeof model !== 'string' || model.length === 0) throw invalidRequest('You must provide a model parameter.', 'model');
  return model;
}

function optionalBoolean(body: Json, key: string): boolean {
  const value = body[key];
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') throw invalidRequest(`'${key}' must be a boolean.`, key);
  return value;
}

// max_completion_tokens is the newer name; accept both as OpenAI does.
function maxTokens(body: Json): number | undefined {
  for (const key of ['max_completion_tokens', 'max_tokens']) {
    const value = body[key];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw invalidRequest(`'${key}' must be an integer >= 0.`, key);
    return value;
  }
  return undefined;
}

function includeUsage(body: Json): boolean {
  const options = body['stream_options'];
  if (options === undefined || options === null) return false;
  if (typeof options !== 'object' || Array.isArray(options)) throw invalidRequest("'stream_options' must be an object.", 'stream_options');
  return (options as Json)['include_usage'] === true;
}

function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content) {
    if (typeof part === 'object' && part !== null && typeof (part as Json)['text'] === 'string') text += (text ? ' ' : '') + ((part as Json)['text'] as string);
  }
  return text;
}

export function parseChatCompletionRequest(raw: unknown): ChatCompletionRequest {
  const body = requireObject(raw);
  const messages = body['messages'];
  if (!Array.isArray(messages) || messages.length === 0) throw invalidRequest("'messages' must be a non-empty array.", 'messages');
  let promptTokens = 0;
  let promptText: string | undefined;
  let lastText = '';
  for (let i = 0; i < messages.length; i++) {
    const message: unknown = messages[i];
    if (typeof message !== 'object' || message === null || typeof (message as Json)['role'] !== 'string') {
      throw invalidRequest(`'messages[${i}]' must be an object with a 'role'.`, `messages[${i}]`);
    }
    const text = contentText((message as Json)['content']);
    promptTokens += countWords(text);
    lastText = text;
    if ((message as Json)['role'] === 'user') promptText = text;
  }
  return {
    model: requireModel(body),
    promptText: promptText ?? lastText,
    promptTokens,
    stream: optionalBoolean(body, 'stream'),
    includeUsage: includeUsage(body),
    maxTokens: maxTokens(body),
  };
}

export function parseCompletionRequest(raw: unknown): CompletionRequest {
  const body = requireObject(raw);
  const prompt = body['prompt'];
  let promptText: string;
  let promptTokens: number;
  if (typeof prompt === 'string') {
    promptText = prompt;
    promptTokens = countWords(prompt);
  } else if (Array.isArray(prompt) && prompt.length > 0 && prompt.every((p) => typeof p === 'string')) {
    // One choice only: the first prompt is answered, all are billed.
    promptText = prompt[0] as string;
    promptTokens = prompt.reduce((sum: number, p: string) => sum + countWords(p), 0);
  } else if (isTokenArray(prompt)) {
    promptText = '';
    promptTokens = prompt.length;
  } else if (Array.isArray(prompt) && prompt.length > 0 && prompt.every(isTokenArray)) {
    promptText = '';
    promptTokens = (prompt as number[][]).reduce((sum, p) => sum + p.length, 0);
  } else {
    throw invalidRequest("'prompt' must be a string, an array of strings, or token arrays.", 'prompt');
  }
  return {
    model: requireModel(body),
    promptText,
    promptTokens,
    stream: optionalBoolean(body, 'stream'),
    includeUsage: includeUsage(body),
    maxTokens: maxTokens(body),
  };
}

export function parseEmbeddingRequest(raw: unknown): EmbeddingRequest {
  const body = requireObject(raw);
  const input = body['input'];
  let inputs: string[];
  let promptTokens: number;
  if (typeof input === 'string') {
    inputs = [input];
    promptTokens = countWords(input);
  } else if (Array.isArray(input) && input.length > 0 && input.every((p) => typeof p === 'string')) {
    inputs = input as string[];
    promptTokens = inputs.reduce((sum, p) => sum + countWords(p), 0);
  } else if (isTokenArray(input)) {
    inputs = [input.join(',')];
    promptTokens = input.length;
  } else if (Array.isArray(input) && input.length > 0 && input.every(isTokenArray)) {
    inputs = (input as number[][]).map((p) => p.join(','));
    promptTokens = (input as number[][]).reduce((sum, p) => sum + p.length, 0);
  } else throw invalidRequest("'input' must be a string, an array of strings, or token arrays.", 'input');
  const format = body['encoding_format'];
  if (format !== undefined && format !== null && format !== 'float' && format !== 'base64') {
    throw invalidRequest("'encoding_format' must be 'float' or 'base64'.", 'encoding_format');
  }
  return { model: requireModel(body), inputs, promptTokens, base64: format === 'base64' };
}

function isTokenArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.length > 0 && value.every((t) => typeof t === 'number' && Number.isInteger(t));
}
