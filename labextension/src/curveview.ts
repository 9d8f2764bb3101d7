import { curveChart, curveComparison } from './curve';
import { el } from './format';
import { innerWidth } from './svg';
import { ICurve } from './tokens';

/**
 * A curve chart with its legend and one line comparing the run with the best. It redraws only
 * when given a different curve or when its width changes.
 */
export class CurveView {
  readonly node = el('div', 'jp-Autoresearch-curveBox');
  private chart = el('div', 'jp-Autoresearch-curveChart');
  private legend = el('div', 'jp-Autoresearch-legend');
  private comparison = el('p', 'jp-Autoresearch-curveText');
  private curve: ICurve | null = null;
  private width = 0;

  constructor() {
    this.node.append(this.chart, this.legend, this.comparison);
    this.node.hidden = true;
  }

  /** Shows `curve`, or `message` (dim) when there is no curve to show; hides on neither. */
  update(curve: ICurve | null, message = ''): void {
    if (!curve) {
      this.curve = null;
      this.node.hidden = !message;
      this.chart.textContent = '';
      this.legend.textContent = '';
      // the server's message names the fix; the panel is narrow, so it goes in the tooltip
      this.comparison.textContent = message ? 'No loss curves: this server does not record them.' : '';
      this.comparison.title = message;
      this.comparison.classList.add('jp-Autoresearch-dim');
      return;
    }
    if (curve === this.curve && !this.node.hidden) {
      return;
    }
    this.curve = curve;
    this.node.hidden = false;
    this.comparison.classList.remove('jp-Autoresearch-dim');
    this.legend.textContent = '';
    this.legend.append(el('span', 'jp-mod-run', `— #${curve.experiment}`));
    if (curve.best) {
      this.legend.append(el('span', 'jp-mod-best', `- - best #${curve.best.experiment}`));
    }
    this.comparison.textContent = curveComparison(curve);
    this.draw();
  }

  /** Redraws at the current width if it changed noticeably. */
  resize(): void {
    if (this.curve && !this.node.hidden && Math.abs(this.chart.clientWidth - this.width) > 8) {
      this.draw();
    }
  }

  private draw(): void {
    if (!this.curve) {
      return;
    }
    this.width = this.chart.clientWidth;
    this.chart.textContent = '';
    this.chart.appendChild(curveChart(this.curve, innerWidth(this.chart)));
  }
}
