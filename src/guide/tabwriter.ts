/**
 * Column alignment exactly as Go's text/tabwriter prints tab-terminated cells, so tables match OSM's CLI
 * byte for byte (OSM: minwidth 6, tabwidth 4, padding 3, padchar ' ', flags 0; cmd/cli/util.go).
 */

export interface TabwriterOptions {
  readonly minWidth: number;
  readonly padding: number;
}

/** OSM's `newTabWriter` settings. */
export const OSM_TABWRITER: TabwriterOptions = { minWidth: 6, padding: 3 };

/**
 * Renders rows whose every cell is tab-terminated (OSM writes `a\tb\tc\t\n`): each column is as wide as its
 * widest cell plus padding (at least minWidth), cells are left-aligned and padded with spaces, trailing
 * padding included, as Go does.
 */
export function formatTabwriter(rows: readonly (readonly string[])[], options = OSM_TABWRITER): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      const width = Math.max(options.minWidth, cell.length + options.padding);
      widths[i] = Math.max(widths[i] ?? 0, width);
    });
  }
  return rows.map((row) => `${row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join("")}\n`).join("");
}
