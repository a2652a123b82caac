import Table from 'cli-table3';

export const OUTPUT_FORMATS = ['table', 'json', 'csv'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** One column: its title (table and CSV header), the cell for the table and the (lossless) cell for CSV. */
export interface Column<T> {
  title: string;
  table: (row: T) => string;
  csv?: (row: T) => string;
}

/**
 * `YYYY-MM-DD HH:MM` in UTC (the workflow's example output), blank when unknown. UTC, so two operators
 * in different time zones read the same line; CSV and JSON keep the full ISO 8601 instant.
 */
export function shortDate(iso: string | null | undefined): string {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  return date.toISOString().slice(0, 16).replace('T', ' ');
}

/**
 * A table without borders, columns separated by two spaces (kubectl's and the workflow's look). Cells
 * are made single-line and stripped of control characters: values come from the registry, and a
 * registered name must not be able to move the cursor or forge a line of the output.
 */
export function renderTable<T>(columns: readonly Column<T>[], rows: readonly T[]): string {
  const table = new Table({
    head: columns.map((c) => c.title),
    chars: {
      top: '', 'top-mid': '', 'top-left': '', 'top-right': '',
      bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
      left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ',
    },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0, compact: true },
  });
  for (const row of rows) table.push(columns.map((c) => printable(c.table(row))));
  // cli-table3 pads the last column too; trailing blanks are noise in a terminal and in `grep` output.
  return table.toString().split('\n').map((line) => line.trimEnd()).join('\n');
}

/** RFC 4180: CRLF line ends, a header row, fields with `"`, `,`, CR or LF quoted, `"` doubled. */
export function renderCsv<T>(columns: readonly Column<T>[], rows: readonly T[]): string {
  const lines = [columns.map((c) => csvField(c.title))];
  for (const row of rows) lines.push(columns.map((c) => csvField((c.csv ?? c.table)(row))));
  return lines.map((fields) => fields.join(',')).join('\r\n') + '\r\n';
}

export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** Two-space indented JSON with a final newline: stable for diffs, parseable by jq. */
export function renderJson(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

/** Control characters (C0, DEL, C1: escape sequences, newlines) shown as `\uXXXX` instead of acted on. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Renders rows in one of the three formats; `heading` (table only) is the line above the table. */
export function renderRows<T>(format: OutputFormat, columns: readonly Column<T>[], rows: readonly T[], json: unknown, heading?: string): string {
  if (format === 'json') return renderJson(json);
  if (format === 'csv') return renderCsv(columns, rows);
  const table = rows.length ? renderTable(columns, rows) + '\n' : '';
  return heading === undefined ? table : `${heading}\n${table ? `\n${table}` : ''}`;
}
