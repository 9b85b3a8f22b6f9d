import { stringify } from 'csv-stringify/sync';

/**
 * A cell a spreadsheet would read as a formula (leading `=`, `+`, `-`, `@`, tab or CR:
 * OWASP's CSV injection) prefixed with `'`; a plain number, negative included, stays a number.
 */
export function spreadsheetSafe(cell: string): string {
  return /^[=+\-@\t\r]/.test(cell) && !/^-?\d+(\.\d+)?$/.test(cell) ? `'${cell}` : cell;
}

/** RFC 4180 CSV (csv-stringify) of these rows, every cell spreadsheet-safe; null is an empty cell. */
export function csvOf(rows: ReadonlyArray<ReadonlyArray<string | number | null>>, options: { crlf?: boolean } = {}): string {
  if (rows.length === 0) return '';
  const cells = rows.map((row) => row.map((c) => (c === null ? '' : spreadsheetSafe(String(c)))));
  return stringify(cells, { record_delimiter: options.crlf ? 'windows' : 'unix' });
}
