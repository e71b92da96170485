/** A Markdown table of the rows, columns in the order given. */
export function table(columns: string[], rows: Array<Record<string, string>>): string {
  const width = columns.map((c) => Math.max(c.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (cells: string[]) => "| " + cells.map((cell, i) => cell.padEnd(width[i]!)).join(" | ") + " |";
  return [line(columns), "|" + width.map((w) => "-".repeat(w + 2)).join("|") + "|", ...rows.map((r) => line(columns.map((c) => r[c] ?? "")))].join("\n");
}

/** Nearest-rank percentile of ascending values. */
export const percentile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
