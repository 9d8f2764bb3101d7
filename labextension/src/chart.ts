import { el, experimentOf } from './format';
import { innerWidth, svgNode as node } from './svg';
import { IResults } from './tokens';

const H = 140; // px; the width follows the panel (see the sidebar's onResize)
const PAD = { left: 50, right: 10, top: 10, bottom: 20 };

interface IPoint {
  x: number;
  y: number | null; // null for a crash
  status: string;
  description: string;
}

/**
 * Returns the progress chart: every attempt by experiment number (kept filled, discarded
 * hollow, crashes as crosses on the bottom axis) and the best-so-far staircase, as the
 * inline plot draws it.
 */
export function progressChart(
  results: IResults,
  width: number,
  selected: number | null = null
): SVGSVGElement {
  const W = Math.max(width, 160);
  const svg = node('svg', {
    viewBox: `0 0 ${W} ${H}`,
    width: W,
    height: H,
    class: 'jp-Autoresearch-chart',
    role: 'img',
    'aria-label': `${results.metric} by experiment`
  }) as SVGSVGElement;
  const points: IPoint[] = results.rows.map((row, i) => {
    const value = parseFloat(row[results.metric]);
    const crash = row.status === 'crash' || !Number.isFinite(value);
    return {
      x: experimentOf(row, i),
      y: crash ? null : value,
      status: row.status,
      description: row.description
    };
  });
  const values = points.filter(p => p.y !== null).map(p => p.y as number);
  if (!points.length) {
    svg.appendChild(
      node('text', { x: W / 2, y: H / 2, class: 'jp-Autoresearch-chartEmpty' }, 'no experiments yet')
    );
    return svg;
  }
  let lo = values.length ? Math.min(...values) : 0;
  let hi = values.length ? Math.max(...values) : 1;
  if (hi - lo < 1e-12) {
    lo -= 0.5 * Math.abs(lo || 1) * 0.01 + 1e-6;
    hi += 0.5 * Math.abs(hi || 1) * 0.01 + 1e-6;
  }
  const margin = (hi - lo) * 0.08;
  lo -= margin;
  hi += margin;
  const xs = points.map(p => p.x);
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs, x0 + 1);
  const sx = (x: number) =>
    PAD.left + ((x - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
  const sy = (y: number) =>
    PAD.top + ((hi - y) / (hi - lo)) * (H - PAD.top - PAD.bottom);
  const bottom = H - PAD.bottom;

  // axes and labels
  svg.appendChild(node('line', { x1: PAD.left, y1: bottom, x2: W - PAD.right, y2: bottom, class: 'jp-Autoresearch-axis' }));
  svg.appendChild(node('line', { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: bottom, class: 'jp-Autoresearch-axis' }));
  for (const v of [hi - margin, lo + margin]) {
    svg.appendChild(node('text', { x: PAD.left - 4, y: sy(v) + 3, class: 'jp-Autoresearch-tick', 'text-anchor': 'end' }, v.toFixed(4)));
  }
  for (const x of x1 - x0 > 1 ? [x0, x1] : [x0]) {
    svg.appendChild(node('text', { x: sx(x), y: H - 6, class: 'jp-Autoresearch-tick', 'text-anchor': 'middle' }, `#${x}`));
  }

  // best so far: a staircase through the kept values
  const better = (a: number, b: number) =>
    results.direction === 'min' ? a < b : a > b;
  let best: number | null = null;
  let path = '';
  for (const p of points) {
    if (p.status === 'keep' && p.y !== null && (best === null || better(p.y, best))) {
      path += best === null ? `M${sx(p.x)},${sy(p.y)}` : `H${sx(p.x)}V${sy(p.y)}`;
      best = p.y;
    }
  }
  if (best !== null) {
    path += `H${sx(x1)}`;
    svg.appendChild(node('path', { d: path, class: 'jp-Autoresearch-bestLine' }));
  }

  for (const p of points) {
    const title = `#${p.x} ${p.status}${p.y === null ? '' : ' ' + p.y.toFixed(6)}: ${p.description} (click to select)`;
    const cx = sx(p.x);
    const cy = p.y === null ? bottom - 6 : sy(p.y);
    // one group per attempt, with a larger transparent disc so a click need not hit the 3.5 px mark
    const group = node('g', {
      class: `jp-Autoresearch-point${p.x === selected ? ' jp-mod-selected' : ''}`,
      'data-experiment': p.x
    });
    group.appendChild(node('circle', { cx, cy, r: 8, class: 'jp-Autoresearch-hit' }));
    if (p.x === selected) {
      group.appendChild(node('circle', { cx, cy, r: 6.5, class: 'jp-Autoresearch-selectedRing' }));
    }
    group.appendChild(
      p.y === null
        ? node('path', { d: `M${cx - 4},${bottom - 10}l8,8m0,-8l-8,8`, class: 'jp-Autoresearch-mark jp-mod-crash' })
        : node('circle', { cx, cy, r: 3.5, class: `jp-Autoresearch-mark jp-mod-${p.status}` })
    );
    group.appendChild(node('title', {}, title));
    svg.appendChild(group);
  }
  return svg;
}

/**
 * The progress chart and its legend. A click on a point reports its experiment (one listener on
 * the box, so a redraw never drops a click); it redraws only when the results, the selected
 * experiment or the width change.
 */
export class ProgressChartView {
  readonly node = el('section', 'jp-Autoresearch-chartBox');
  private results: IResults | null = null;
  private selected: number | null = null;
  private width = 0;

  constructor(onSelect: (experiment: number) => void) {
    this.node.hidden = true;
    this.node.addEventListener('click', event => {
      const point = (event.target as Element).closest?.('.jp-Autoresearch-point');
      const n = Number(point?.getAttribute('data-experiment'));
      if (point && Number.isFinite(n)) {
        onSelect(n);
      }
    });
  }

  update(results: IResults | null, selected: number | null): void {
    if (results === this.results && selected === this.selected) {
      return;
    }
    this.results = results;
    this.selected = selected;
    this.draw();
  }

  resize(): void {
    if (this.results && Math.abs(this.node.clientWidth - this.width) > 8) {
      this.draw();
    }
  }

  /** Draws the chart at the panel's width, so its text stays at its natural size. */
  private draw(): void {
    const results = this.results;
    this.node.textContent = '';
    this.node.hidden = !results?.rows.length;
    if (!results || !results.rows.length) {
      return;
    }
    this.width = this.node.clientWidth;
    this.node.appendChild(progressChart(results, innerWidth(this.node), this.selected));
    const legend = el('div', 'jp-Autoresearch-legend');
    legend.append(
      el('span', 'jp-mod-keep', '● kept'),
      el('span', 'jp-mod-discard', '○ discarded'),
      el('span', 'jp-mod-crash', '× crash'),
      el('span', 'jp-mod-best', `— best ${results.metric} so far`)
    );
    this.node.appendChild(legend);
  }
}
