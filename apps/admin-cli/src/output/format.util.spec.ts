import type { ModelDeploymentView } from '@switchboard/contracts';
import { MODEL_COLUMNS } from './columns.util';
import { csvField, printable, renderCsv, renderRows, renderTable, shortDate } from './format.util';
import { parseCsv } from '@switchboard/testing';

function model(overrides: Partial<ModelDeploymentView> = {}): ModelDeploymentView {
  return {
    serviceId: 'llama-2-7b-development-34238d40',
    modelName: 'llama-2-7b',
    endpoint: 'llama-2-7b-development.system.svc.cluster.local:8000',
    environment: 'development',
    namespace: 'system',
    status: 'ready',
    health: 'healthy',
    adminState: 'enabled',
    lastSeen: null,
    registeredAt: '2025-01-27T10:30:00.000Z',
    updatedAt: '2025-01-27T10:30:59.999Z',
    revision: 7,
    ...overrides,
  };
}

describe('admin-cli output', () => {
  it('shows dates as YYYY-MM-DD HH:MM in UTC, blank when unknown or unreadable', () => {
    expect(shortDate('2025-01-27T10:30:59.999Z')).toBe('2025-01-27 10:30');
    // An instant written with an offset is shown in UTC, so every operator reads the same time.
    expect(shortDate('2025-01-27T23:15:00+02:00')).toBe('2025-01-27 21:15');
    expect(shortDate(null)).toBe('');
    expect(shortDate(undefined)).toBe('');
    expect(shortDate('yesterday')).toBe('');
  });

  it("prints the workflow's header line and one aligned row per deployment, with the status words", () => {
    const text = renderRows('table', MODEL_COLUMNS, [model(), model({ serviceId: 'gpt-neo-production-1', modelName: 'gpt-neo', status: 'disabled', lastSeen: '2025-01-27T10:25:00Z' })], [], 'Found 2 model deployment(s)');
    const lines = text.split('\n');
    expect(lines[0]).toBe('Found 2 model deployment(s)');
    expect(lines[1]).toBe('');
    expect(lines[2].split(/\s{2,}/)).toEqual(['ID', 'Model Name', 'Endpoint', 'Status', 'Environment', 'Namespace', 'Last Health', 'Updated']);
    // Columns line up: each header starts where its cells start.
    const statusAt = lines[2].indexOf('Status');
    expect(lines[3].slice(statusAt, statusAt + 6)).toBe('ready ');
    expect(lines[4].slice(statusAt, statusAt + 8)).toBe('disabled');
    // Unknown Last Health is blank, the Updated date still in its column.
    expect(lines[3]).toMatch(/system {2,}2025-01-27 10:30$/);
    expect(lines[4]).toMatch(/system {2,}2025-01-27 10:25 {2}2025-01-27 10:30$/);
    expect(lines.every((l) => l === l.trimEnd())).toBe(true);
  });

  it('prints the header line alone when nothing is found', () => {
    expect(renderRows('table', MODEL_COLUMNS, [], [], 'Found 0 model deployment(s)')).toBe('Found 0 model deployment(s)\n');
  });

  it('writes RFC 4180 CSV: header row, CRLF, quoted commas, quotes and newlines, ISO dates', () => {
    const tricky = model({ namespace: 'a,"b"\nc', lastSeen: '2025-01-27T10:25:00.000Z' });
    const text = renderCsv(MODEL_COLUMNS, [model(), tricky]);
    expect(text.endsWith('\r\n')).toBe(true);
    const records = parseCsv(text);
    expect(records[0]).toEqual(['ID', 'Model Name', 'Endpoint', 'Status', 'Environment', 'Namespace', 'Last Health', 'Updated']);
    expect(records).toHaveLength(3);
    expect(records[1]).toEqual(['llama-2-7b-development-34238d40', 'llama-2-7b', 'llama-2-7b-development.system.svc.cluster.local:8000', 'ready', 'development', 'system', '', '2025-01-27T10:30:59.999Z']);
    expect(records[2][5]).toBe('a,"b"\nc');
    expect(records[2][6]).toBe('2025-01-27T10:25:00.000Z');
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('line\r\nbreak')).toBe('"line\r\nbreak"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
  });

  it('writes JSON that parses back to what was given', () => {
    const rows = [model()];
    expect(JSON.parse(renderRows('json', MODEL_COLUMNS, rows, rows))).toEqual(rows);
  });

  it('never lets a registered value move the cursor or forge a line of the table', () => {
    const hostile = model({ modelName: 'evil\u001b[2J\nFound 99 model deployment(s)' });
    const text = renderTable(MODEL_COLUMNS, [hostile]);
    expect(text).not.toContain('\u001b');
    expect(text.split('\n')).toHaveLength(2);
    expect(printable('a\u0007b\u009bc')).toBe('a\\u0007b\\u009bc');
  });
});
