import { experimentOf } from './format';
import { IResults } from './tokens';

const SVG = 'http://www.w3.org/2000/svg';
const H = 140; // px; the width follows the panel (see the sidebar's onResize)
const PAD = { left: 50, right: 10, top: 10, bottom: 20 };

interface IPoint {
  x: number;
  y: number | null; // null for a crash
  status: string;
  description: string;
}

function node(
  tag: string,
  attrs: { [name: string]: string | number },
  text?: string
): SVGElement {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    n.setAttribute(k, String(v));
  }
  if (text !== undefined) {
    n.textContent = text;
  }
  return n;
}

/**
 * Returns the progress chart: every attempt by experiment number (kept filled, discarded
 * hollow, crashes as crosses on the bottom axis) and the best-so-far staircase, as the
 * inline plot draws it.
 */
export function progressChart(results: IResults, width: number): SVGSVGElement {
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
    const title = `#${p.x} ${p.status}${p.y === null ? '' : ' ' + p.y.toFixed(6)}: ${p.description}`;
    let mark: SVGElement;
    if (p.y === null) {
      const cx = sx(p.x);
      mark = node('path', {
        d: `M${cx - 4},${bottom - 10}l8,8m0,-8l-8,8`,
        class: 'jp-Autoresearch-mark jp-mod-crash'
      });
    } else {
      mark = node('circle', {
        cx: sx(p.x),
        cy: sy(p.y),
        r: 3.5,
        class: `jp-Autoresearch-mark jp-mod-${p.status}`
      });
    }
    mark.appendChild(node('title', {}, title));
    svg.appendChild(mark);
  }
  return svg;
}
