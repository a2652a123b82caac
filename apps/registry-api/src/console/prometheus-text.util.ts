/** One sample of the Prometheus text format: name, labels, value. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface ParsedExposition {
  samples: Sample[];
  /** Lines that were not comments, blank or a valid sample: skipped. */
  malformed: number;
  /** The text was longer than the cap; only the part before it was read. */
  truncated: boolean;
}

/** A scrape of the router is ~100 KiB with a few models; 4 MiB leaves room without trusting the peer. */
export const MAX_EXPOSITION_BYTES = 4 * 1024 * 1024;
const MAX_LABELS = 32;

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)/y;

/**
 * The text exposition format (what prom-client writes), read with bounds: the text is cut at
 * `maxBytes`, a line that is not a sample is skipped and counted, and only `wanted` metric names are
 * kept, so a hostile or huge `/metrics` costs at most one pass over `maxBytes`. No package in the
 * tree parses it (prom-client only writes it).
 */
export function parsePrometheusText(text: string, wanted?: ReadonlySet<string>, maxBytes = MAX_EXPOSITION_BYTES): ParsedExposition {
  const truncated = text.length > maxBytes;
  const body = truncated ? text.slice(0, text.lastIndexOf('\n', maxBytes) + 1) : text;
  const samples: Sample[] = [];
  let malformed = 0;
  for (const raw of body.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const match = SAMPLE.exec(line);
    if (!match) {
      malformed++;
      continue;
    }
    const name = match[1];
    const baseName = name.replace(/_(bucket|sum|count)$/, '');
    if (wanted && !wanted.has(name) && !wanted.has(baseName)) continue;
    const value = parseValue(match[4]);
    const labels = match[3] === undefined ? {} : parseLabels(match[3]);
    if (value === undefined || !labels) {
      malformed++;
      continue;
    }
    samples.push({ name, labels, value });
  }
  return { samples, malformed, truncated };
}

function parseValue(text: string): number | undefined {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  const value = Number(text);
  return Number.isNaN(value) ? undefined : value;
}

function parseLabels(text: string): Record<string, string> | undefined {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  let count = 0;
  while (LABEL.lastIndex < text.length) {
    const at = LABEL.lastIndex;
    const match = LABEL.exec(text);
    if (!match || match.index !== at || ++count > MAX_LABELS) return undefined;
    labels[match[1]] = match[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    if (match[3] === '') break;
  }
  return labels;
}
