import { durationText } from './format';
import { svgNode } from './svg';
import { ICurve, ICurvePoint } from './tokens';

const PAD = { left: 42, right: 8, top: 8, bottom: 18 };
const EARLY_SHARE = 0.1; // the first 10% of training time is left out of the y range: its loss is huge

/** Returns the loss of `points` at training time `t` (linear between points), or null outside them. */
export function lossAt(points: ICurvePoint[], t: number): number | null {
  if (!points.length || t < points[0].training_seconds || t > points[points.length - 1].training_seconds) {
    return null;
  }
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1];
    const b = points[i];
    if (t <= b.training_seconds) {
      const span = b.training_seconds - a.training_seconds;
      return span > 0 ? a.loss + ((t - a.training_seconds) / span) * (b.loss - a.loss) : b.loss;
    }
  }
  return points[points.length - 1].loss;
}

/** Returns one sentence comparing the run with the best at the latest training time both reached. */
export function curveComparison(curve: ICurve): string {
  const last = curve.points[curve.points.length - 1];
  if (!last) {
    return 'No loss curve: the run printed no progress lines.';
  }
  if (!curve.best) {
    return `at ${durationText(last.training_seconds)} of training: loss ${last.loss.toFixed(4)} (the best experiment)`;
  }
  const bestLast = curve.best.points[curve.best.points.length - 1];
  const t = Math.min(last.training_seconds, bestLast?.training_seconds ?? -1);
  const run = lossAt(curve.points, t);
  const best = lossAt(curve.best.points, t);
  if (run === null || best === null) {
    return `loss ${last.loss.toFixed(4)} at ${durationText(last.training_seconds)}; the best #${curve.best.experiment} has no loss at that time`;
  }
  const delta = run - best;
  const sign = delta > 0 ? '+' : delta < 0 ? '−' : '±';
  return `at ${durationText(t)} of training: loss ${run.toFixed(4)} vs best #${curve.best.experiment} ${best.toFixed(4)} (${sign}${Math.abs(delta).toFixed(4)})`;
}

/**
 * Returns a small chart of the run's loss over training time (solid) and the best's (dashed),
 * so "is it beating the best?" reads at equal training time.
 */
export function curveChart(curve: ICurve, width: number, height = 110): SVGSVGElement {
  const W = Math.max(width, 160);
  const H = height;
  const svg = svgNode('svg', {
    viewBox: `0 0 ${W} ${H}`,
    width: W,
    height: H,
    class: 'jp-Autoresearch-curve',
    role: 'img',
    'aria-label': `loss of #${curve.experiment} by training time` + (curve.best ? ` against the best #${curve.best.experiment}` : '')
  }) as SVGSVGElement;
  const series = [curve.points, curve.best?.points ?? []];
  const all = series.flat();
  if (!curve.points.length) {
    svg.appendChild(svgNode('text', { x: W / 2, y: H / 2, class: 'jp-Autoresearch-chartEmpty' }, 'no loss curve yet'));
    return svg;
  }
  const tMax = Math.max(...all.map(p => p.training_seconds), 1e-9);
  const settled = all.filter(p => p.training_seconds >= EARLY_SHARE * tMax);
  let lo = Math.min(...all.map(p => p.loss));
  let hi = Math.max(...(settled.length ? settled : all).map(p => p.loss));
  if (hi - lo < 1e-9) {
    lo -= 0.01;
    hi += 0.01;
  }
  const sx = (t: number) => PAD.left + (t / tMax) * (W - PAD.left - PAD.right);
  const sy = (v: number) => PAD.top + ((hi - Math.min(v, hi)) / (hi - lo)) * (H - PAD.top - PAD.bottom);
  const bottom = H - PAD.bottom;
  svg.appendChild(svgNode('line', { x1: PAD.left, y1: bottom, x2: W - PAD.right, y2: bottom, class: 'jp-Autoresearch-axis' }));
  svg.appendChild(svgNode('line', { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: bottom, class: 'jp-Autoresearch-axis' }));
  for (const v of [hi, lo]) {
    svg.appendChild(svgNode('text', { x: PAD.left - 4, y: sy(v) + 3, class: 'jp-Autoresearch-tick', 'text-anchor': 'end' }, v.toFixed(3)));
  }
  svg.appendChild(svgNode('text', { x: PAD.left, y: H - 5, class: 'jp-Autoresearch-tick' }, '0 s'));
  svg.appendChild(svgNode('text', { x: W - PAD.right, y: H - 5, class: 'jp-Autoresearch-tick', 'text-anchor': 'end' }, `${durationText(tMax)} training`));
  const path = (points: ICurvePoint[]) =>
    points.map((p, i) => `${i ? 'L' : 'M'}${sx(p.training_seconds).toFixed(1)},${sy(p.loss).toFixed(1)}`).join('');
  if (curve.best?.points.length) {
    const best = svgNode('path', { d: path(curve.best.points), class: 'jp-Autoresearch-curveBest' });
    best.appendChild(svgNode('title', {}, `best #${curve.best.experiment}`));
    svg.appendChild(best);
  }
  const run = svgNode('path', { d: path(curve.points), class: 'jp-Autoresearch-curveRun' });
  run.appendChild(svgNode('title', {}, `#${curve.experiment}`));
  svg.appendChild(run);
  const last = curve.points[curve.points.length - 1];
  svg.appendChild(svgNode('circle', { cx: sx(last.training_seconds), cy: sy(last.loss), r: 2.5, class: 'jp-Autoresearch-curveEnd' }));
  return svg;
}
