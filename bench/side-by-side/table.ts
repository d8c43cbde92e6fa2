/** Medians over rounds and the side-by-side table the benchmarks print. */

export function median(values: number[]): number {
  const sorted = [...values].filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** One measure: its samples per system, how to print a value, and whether lower is better. */
export interface Row {
  measure: string;
  unit: 'ms' | 's' | 'MiB' | 'req/s' | 'count';
  peer: number[];
  ours: number[];
  lowerIsBetter: boolean;
}

function format(value: number, unit: Row['unit']): string {
  if (!Number.isFinite(value)) return 'n/a';
  switch (unit) {
    case 'ms': return `${value < 100 ? value.toFixed(1) : Math.round(value).toLocaleString('en')} ms`;
    case 's': return `${(value / 1000).toFixed(2)} s`;
    case 'MiB': return `${value.toFixed(1)} MiB`;
    case 'req/s': return `${Math.round(value).toLocaleString('en')} req/s`;
    case 'count': return String(Math.round(value));
  }
}

/** A Markdown table: measure | peer | clusterhub | ratio (clusterhub ÷ peer). */
export function renderTable(peerName: string, rows: Row[]): string {
  const lines = [`| measure | ${peerName} | clusterhub | clusterhub ÷ ${peerName} |`, '|---|---|---|---|'];
  for (const row of rows) {
    const peer = median(row.peer);
    const ours = median(row.ours);
    const ratio = peer === 0 || !Number.isFinite(peer) ? 'n/a' : (ours / peer).toFixed(2);
    lines.push(`| ${row.measure} | ${format(peer, row.unit)} | ${format(ours, row.unit)} | ${ratio}${row.lowerIsBetter ? '' : ' (higher is better)'} |`);
  }
  return lines.join('\n');
}
