// Responses are assembled as strings from pieces JSON-encoded once per backend (model, fingerprint):
// the non-streaming chat answer is the benchmark baseline, and this keeps it to one small concatenation.

export interface ResponseHead {
  /** Only [A-Za-z0-9-], so it is inlined without escaping. */
  id: string;
  created: number;
  modelJson: string;
  fingerprintJson: string;
}

export interface StreamPlan {
  /** Complete SSE events, `data: …\n\n`, the last one `data: [DONE]\n\n`. */
  chunks: string[];
  /** Index of the first token chunk; token i is chunks[firstToken + i]. */
  firstToken: number;
  tokens: number;
}

export const SSE_DONE = 'data: [DONE]\n\n';

export function usageJson(promptTokens: number, completionTokens: number): string {
  return `{"prompt_tokens":${promptTokens},"completion_tokens":${completionTokens},"total_tokens":${promptTokens + completionTokens}}`;
}

export function chatCompletionJson(head: ResponseHead, content: string, finishReason: string, usage: string): string {
  return (
    `{"id":"${head.id}","object":"chat.completion","created":${head.created},"model":${head.modelJson},` +
    `"system_fingerprint":${head.fingerprintJson},"choices":[{"index":0,"message":{"role":"assistant","content":${JSON.stringify(content)}},` +
    `"logprobs":null,"finish_reason":"${finishReason}"}],"usage":${usage}}`
  );
}

export function completionJson(head: ResponseHead, text: string, finishReason: string, usage: string): string {
  return (
    `{"id":"${head.id}","object":"text_completion","created":${head.created},"model":${head.modelJson},` +
    `"system_fingerprint":${head.fingerprintJson},"choices":[{"index":0,"text":${JSON.stringify(text)},` +
    `"logprobs":null,"finish_reason":"${finishReason}"}],"usage":${usage}}`
  );
}

/** Role chunk, one chunk per token, the finish chunk, the usage chunk when asked for, [DONE]. */
export function chatStreamPlan(head: ResponseHead, pieces: readonly string[], finishReason: string, usage: string | undefined): StreamPlan {
  const start = `data: {"id":"${head.id}","object":"chat.completion.chunk","created":${head.created},"model":${head.modelJson},"system_fingerprint":${head.fingerprintJson},"choices":`;
  // With include_usage OpenAI sends "usage":null on every chunk and the figures on an extra one.
  const end = usage === undefined ? '}\n\n' : ',"usage":null}\n\n';
  const choice = (delta: string, finish: string): string => `[{"index":0,"delta":${delta},"logprobs":null,"finish_reason":${finish}}]`;
  const chunks: string[] = [start + choice('{"role":"assistant","content":""}', 'null') + end];
  for (const piece of pieces) chunks.push(start + choice(`{"content":${JSON.stringify(piece)}}`, 'null') + end);
  chunks.push(start + choice('{}', `"${finishReason}"`) + end);
  if (usage !== undefined) chunks.push(`${start}[],"usage":${usage}}\n\n`);
  chunks.push(SSE_DONE);
  return { chunks, firstToken: 1, tokens: pieces.length };
}

/** One chunk per token, the finish chunk, the usage chunk when asked for, [DONE]. */
export function completionStreamPlan(head: ResponseHead, pieces: readonly string[], finishReason: string, usage: string | undefined): StreamPlan {
  const start = `data: {"id":"${head.id}","object":"text_completion","created":${head.created},"model":${head.modelJson},"system_fingerprint":${head.fingerprintJson},"choices":`;
  const end = usage === undefined ? '}\n\n' : ',"usage":null}\n\n';
  const choice = (text: string, finish: string): string => `[{"index":0,"text":${text},"logprobs":null,"finish_reason":${finish}}]`;
  const chunks: string[] = [];
  for (const piece of pieces) chunks.push(start + choice(JSON.stringify(piece), 'null') + end);
  chunks.push(start + choice('""', `"${finishReason}"`) + end);
  if (usage !== undefined) chunks.push(`${start}[],"usage":${usage}}\n\n`);
  chunks.push(SSE_DONE);
  return { chunks, firstToken: 0, tokens: pieces.length };
}
