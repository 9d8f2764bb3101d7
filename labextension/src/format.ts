/** Small formatting helpers shared by the sidebar's parts. */

/** Returns a metric value with six decimals, or an en dash. */
export function metricText(value: number | null | undefined): string {
  return value === null || value === undefined || Number.isNaN(value)
    ? '–'
    : value.toFixed(6);
}

/** Returns a signed delta with six decimals. */
export function deltaText(value: number): string {
  return (value > 0 ? '+' : value < 0 ? '−' : '±') + Math.abs(value).toFixed(6);
}

/** Returns seconds as "4.2 s", "3m05s" or "1h02m". */
export function durationText(seconds: number): string {
  if (seconds < 60) {
    return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  }
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, '0');
  return h ? `${h}h${pad(m)}m` : `${m}m${pad(s % 60)}s`;
}

/** Creates an element with a class and optional text. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = '',
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** Sets an element's text only when it changed, so a refresh mutates nothing it need not. */
export function setText(node: HTMLElement, text: string): void {
  if (node.textContent !== text) {
    node.textContent = text;
  }
}

/** Returns the experiment number of a results row (the row's position for a reference-format file). */
export function experimentOf(
  row: { [column: string]: string },
  index: number
): number {
  const n = parseInt(row['experiment'] ?? '', 10);
  return Number.isFinite(n) ? n : index + 1;
}
