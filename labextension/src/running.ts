import { CurveView } from './curveview';
import { el, setText } from './format';
import { progressOf } from './progress';
import { ICurve, ILive } from './tokens';

/**
 * The running experiment: title, phase, Stop button, progress bar and facts, and its live loss
 * curve against the best's. Built once and updated in place about once a second, so the Stop
 * button is the same element from one refresh to the next and a click on it is never lost.
 */
export class RunningView {
  readonly node = el('section', 'jp-Autoresearch-running');
  private title = el('button', 'jp-Autoresearch-runningTitle');
  private phase = el('span', 'jp-Autoresearch-phase');
  private description = el('p', 'jp-Autoresearch-runningDesc');
  private bar = el('div', 'jp-Autoresearch-bar');
  private fill = el('div', 'jp-Autoresearch-barFill');
  private time = el('p', 'jp-Autoresearch-trainingTime');
  private facts = el('p', 'jp-Autoresearch-runningFacts');
  private curve = new CurveView();
  private experiment: number | null = null;

  constructor(onStop: () => void, onSelect: (experiment: number) => void) {
    const head = el('div', 'jp-Autoresearch-runningHead');
    const stop = el('button', 'jp-Button jp-mod-styled jp-mod-warn jp-Autoresearch-stopButton', 'Stop');
    stop.title = 'Ask the runner to stop this experiment';
    stop.addEventListener('click', onStop);
    this.title.title = 'Show this experiment below: its diff, log and curve';
    this.title.addEventListener('click', () => {
      if (this.experiment !== null) {
        onSelect(this.experiment);
      }
    });
    head.append(el('span', 'jp-Autoresearch-pulse'), this.title, this.phase, stop);
    this.bar.setAttribute('role', 'progressbar');
    this.bar.setAttribute('aria-label', 'training progress');
    this.bar.appendChild(this.fill);
    this.node.append(head, this.description, this.bar, this.time, this.facts, this.curve.node);
    this.node.hidden = true;
  }

  update(live: ILive | null, peakRssMb: number | null, curve: ICurve | null): void {
    this.node.hidden = !live;
    if (!live) {
      this.experiment = null;
      return;
    }
    this.experiment = live.experiment;
    const view = progressOf(live, peakRssMb);
    setText(this.title, `Running #${live.experiment}${live.run > 1 ? ` (run ${live.run})` : ''}`);
    setText(this.phase, view.label);
    this.phase.dataset.phase = live.phase ?? 'running';
    setText(this.description, live.description);
    this.bar.classList.toggle('jp-mod-undetermined', view.fraction === null);
    this.fill.style.width = `${(100 * (view.fraction ?? 0)).toFixed(1)}%`;
    if (view.fraction === null) {
      this.bar.removeAttribute('aria-valuenow');
    } else {
      this.bar.setAttribute('aria-valuenow', (100 * view.fraction).toFixed(0));
    }
    setText(this.time, view.time);
    setText(this.facts, view.facts.join(' · '));
    this.curve.update(curve && curve.experiment === live.experiment ? curve : null);
  }

  resize(): void {
    this.curve.resize();
  }
}
