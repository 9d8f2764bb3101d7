import { CurveView } from './curveview';
import { diffBlock } from './diff';
import { el } from './format';
import { ICurve, IExperimentDetail } from './tokens';

/** What the detail view shows; the sidebar passes it from its model. */
export interface IDetailState {
  experiment: number | null;
  detail: IExperimentDetail | null;
  error: string;
  curve: ICurve | null;
  curveMessage: string; // shown when there is no curve (e.g. the server records none)
  running: boolean; // the experiment is the one running now
}

/**
 * The selected experiment in the sidebar: its row, its loss curve against the best's, its diff
 * and log tail, and buttons to open it in the main area or close it. Built once; each update
 * changes only what changed.
 */
export class ExperimentDetailView {
  readonly node = el('section', 'jp-Autoresearch-detail');
  private title = el('h3', '');
  private summary = el('p', 'jp-Autoresearch-detailSummary');
  private commits = el('p', 'jp-Autoresearch-dim');
  private curve = new CurveView();
  private diffBox = el('div', 'jp-Autoresearch-diffBox');
  private logTitle = el('h4', '');
  private log = el('pre', 'jp-Autoresearch-log');
  private shown: IExperimentDetail | null = null;

  constructor(onOpen: () => void, onClose: () => void) {
    const head = el('div', 'jp-Autoresearch-detailHead');
    const open = el('button', 'jp-Autoresearch-action jp-Autoresearch-openButton', 'Open diff and log');
    open.title = 'Open this experiment’s diff and log in a main-area tab, where they are readable';
    open.addEventListener('click', onOpen);
    const close = el('button', 'jp-Button jp-mod-minimal jp-Autoresearch-iconButton', '×');
    close.title = 'Close';
    close.setAttribute('aria-label', 'Close the experiment');
    close.addEventListener('click', onClose);
    head.append(this.title, close);
    this.node.append(
      head, this.summary, this.commits, open, this.curve.node,
      el('h4', '', 'Diff against parent'), this.diffBox, this.logTitle, this.log
    );
    this.node.hidden = true;
  }

  update(state: IDetailState): void {
    this.node.hidden = state.experiment === null;
    if (state.experiment === null) {
      this.shown = null;
      return;
    }
    this.title.textContent = `Experiment #${state.experiment}`;
    this.curve.update(state.curve, state.curveMessage);
    const detail = state.detail;
    if (detail === this.shown && detail) {
      return;
    }
    this.shown = detail;
    if (!detail) {
      this.summary.textContent = state.error || 'Loading…';
      this.summary.classList.toggle('jp-mod-error', !!state.error);
      this.commits.textContent = '';
      this.diffBox.textContent = '';
      this.logTitle.textContent = '';
      this.log.hidden = true;
      return;
    }
    const row = detail.row;
    this.summary.classList.remove('jp-mod-error');
    this.summary.textContent = row
      ? `${row.status}${row.crash_reason ? ` (${row.crash_reason})` : ''}: ${row.description}`
      : state.running ? 'running now' : 'no results row (the experiment did not finish)';
    this.commits.textContent = `commit ${(detail.commit ?? '?').slice(0, 7)} · parent ${(detail.parent ?? '?').slice(0, 7)}`;
    this.diffBox.textContent = '';
    this.diffBox.appendChild(
      detail.diff
        ? diffBlock(detail.diff + (detail.diff_truncated ? '\n… (diff cut here)' : ''))
        : el('p', 'jp-Autoresearch-dim', 'No change: a re-run of its parent.')
    );
    this.logTitle.textContent = `Log tail (${detail.log_path})`;
    this.log.hidden = false;
    this.log.textContent = detail.log_tail.length ? detail.log_tail.join('\n') : 'No log.';
  }

  resize(): void {
    this.curve.resize();
  }
}
