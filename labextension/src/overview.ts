import { deltaText, durationText, el, metricText, setText } from './format';
import { ICampaignStatus } from './tokens';

/** The campaign's objective, stop rules, counts, branch warning and best result, updated in place. */
export class OverviewView {
  readonly node = el('section', 'jp-Autoresearch-overview');
  readonly bestNode = el('section', 'jp-Autoresearch-best');
  private tag = el('h3', 'jp-Autoresearch-tag');
  private objective = el('p', 'jp-Autoresearch-objective');
  private stop = el('p', 'jp-Autoresearch-stop');
  private counts = el('p', 'jp-Autoresearch-counts');
  private warning = el('p', 'jp-Autoresearch-warning');
  private bestLine = el('p', 'jp-Autoresearch-bestValue');
  private bestNumber = el('span', '');
  private bestMetric = el('strong', 'jp-Autoresearch-bestMetric');
  private delta = el('span', 'jp-Autoresearch-delta');
  private bestDescription = el('p', 'jp-Autoresearch-dim');

  constructor() {
    this.node.append(this.tag, this.objective, this.stop, this.counts, this.warning);
    this.bestLine.append(el('span', 'jp-Autoresearch-label', 'Best '), this.bestNumber, this.bestMetric, this.delta);
    this.bestNode.append(this.bestLine, this.bestDescription);
  }

  update(s: ICampaignStatus): void {
    setText(this.tag, s.tag);
    setText(this.objective, `${s.objective} · ${durationText(s.budget_s)} budget · keep rule ${s.keep_rule}`);
    setText(this.stop, s.stop.progress);
    this.stop.classList.toggle('jp-mod-reached', s.stop.reached);
    setText(this.counts,
      `${s.attempted} experiments: ${s.counts.keep} kept, ${s.counts.discard} discarded, ${s.counts.crash} crashed`);
    this.warning.hidden = s.current_branch === s.branch;
    setText(this.warning, `Working copy is on ${s.current_branch ?? 'a detached HEAD'}, not ${s.branch}.`);
    this.bestLine.hidden = !s.best;
    if (!s.best) {
      setText(this.bestDescription, 'No kept result yet.');
      return;
    }
    setText(this.bestNumber, `#${s.best.experiment ?? '?'} `);
    setText(this.bestMetric, metricText(s.best.value));
    let delta = '';
    if (s.baseline && s.baseline.experiment === s.best.experiment) {
      delta = ' (the baseline)';
    } else if (s.delta !== null && s.baseline) {
      delta = ` ${deltaText(s.delta)} vs baseline ${metricText(s.baseline.value)}`;
    }
    setText(this.delta, delta);
    this.delta.classList.toggle('jp-mod-improved', !!s.delta && !(s.baseline?.experiment === s.best.experiment));
    setText(this.bestDescription, s.best.description);
  }
}
