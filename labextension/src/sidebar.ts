import { CommandRegistry } from '@lumino/commands';
import { ISignal, Signal } from '@lumino/signaling';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';
import { refreshIcon } from '@jupyterlab/ui-components';

import { getExperiment, getResults, getStatus, listCampaigns } from './api';
import { progressChart } from './chart';
import { experimentDetail } from './detail';
import { deltaText, durationText, el, metricText } from './format';
import { autoresearchIcon } from './icon';
import { ResultsTable } from './table';
import {
  CommandIDs,
  ICampaignStatus,
  ICampaignSummary,
  ILive,
  IResults
} from './tokens';

const RUNNING_POLL_MS = 1000; // the runner rewrites live.json about once a second
const IDLE_POLL_MS = 3000;
const LIST_POLL_MS = 15000; // new campaigns appear rarely; the walk is the costliest call

/**
 * The "Autoresearch" left panel. It reads everything from the server's /autoresearch routes
 * (the campaign's files), so it needs no kernel, and it polls only while it is visible.
 */
export class AutoresearchSidebar extends Widget {
  private campaigns: ICampaignSummary[] = [];
  private selectedId: string | null = null;
  private _status: ICampaignStatus | null = null;
  private results: IResults | null = null;
  private timer: number | null = null;
  private listedAt = 0;
  private _changed = new Signal<this, void>(this);

  private picker = el('select', 'jp-Autoresearch-picker');
  private message = el('div', 'jp-Autoresearch-message');
  private overview = el('section', 'jp-Autoresearch-overview');
  private best = el('section', 'jp-Autoresearch-best');
  private running = el('section', 'jp-Autoresearch-running');
  private chart = el('section', 'jp-Autoresearch-chartBox');
  private chartWidth = 0;
  private table: ResultsTable;
  private detail = el('section', 'jp-Autoresearch-detail');
  private body = el('div', 'jp-Autoresearch-body');

  constructor(private commands: CommandRegistry) {
    super();
    this.id = 'autoresearch-sidebar';
    this.addClass('jp-Autoresearch');
    this.title.icon = autoresearchIcon;
    this.title.caption = 'Autoresearch';
    this.table = new ResultsTable(n => void this.showExperiment(n));
    this.build();
  }

  /** Emitted when the selected campaign or its status changes (commands re-check if enabled). */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The id of the selected campaign, or null when there is none. */
  get selected(): string | null {
    return this.selectedId;
  }

  /** The latest status of the selected campaign. */
  get status(): ICampaignStatus | null {
    return this._status;
  }

  /** Re-reads the campaign list and the selected campaign now. */
  async refresh(): Promise<void> {
    this.results = null; // re-read the table even if its row count did not change
    await this.refreshCampaigns();
    await this.poll();
  }

  /**
   * Selects the campaign that holds `path` (a document's path relative to the server root),
   * so that with notebooks open on several campaigns the panel follows the active one.
   */
  follow(path: string): void {
    const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
    let best: string | null = null;
    for (const { id } of this.campaigns) {
      const inside = id === '.' || dir === id || dir.startsWith(id + '/');
      if (inside && (best === null || best === '.' || id.length > best.length)) {
        best = id;
      }
    }
    if (best !== null && best !== this.selectedId) {
      this.picker.value = best;
      this.select(best, this.isVisible);
    }
  }

  private build(): void {
    const header = el('div', 'jp-Autoresearch-header');
    header.appendChild(el('h2', 'jp-Autoresearch-title', 'Autoresearch'));
    const refresh = el('button', 'jp-Autoresearch-iconButton jp-Button jp-mod-minimal');
    refresh.title = 'Refresh campaigns';
    refresh.setAttribute('aria-label', 'Refresh campaigns');
    refreshIcon.element({ container: refresh });
    refresh.addEventListener('click', () => void this.refresh());
    header.appendChild(refresh);
    this.picker.title = 'Campaign (folder relative to the server root)';
    this.picker.addEventListener('change', () => this.select(this.picker.value));
    const actions = el('div', 'jp-Autoresearch-actions');
    for (const [label, command, title] of [
      ['Notebook', CommandIDs.openNotebook, 'Open the results as a DataFrame in a new notebook'],
      ['Console', CommandIDs.openConsole, 'Open the results as a DataFrame in a console'],
      ['Report', CommandIDs.openReport, 'Open the campaign report']
    ]) {
      const button = el('button', 'jp-Autoresearch-action', label);
      button.title = title;
      button.addEventListener('click', () => void this.commands.execute(command));
      actions.appendChild(button);
    }
    this.running.hidden = true;
    this.detail.hidden = true;
    this.body.append(this.overview, actions, this.best, this.running, this.chart, this.table.node, this.detail);
    this.node.append(header, this.picker, this.message, this.body);
  }

  protected onAfterShow(msg: Message): void {
    void this.refresh();
  }

  protected onBeforeHide(msg: Message): void {
    this.stopTimer();
  }

  dispose(): void {
    this.stopTimer();
    super.dispose();
  }

  private stopTimer(): void {
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private schedule(): void {
    this.stopTimer();
    if (this.isDisposed || !this.isVisible) {
      return;
    }
    const ms = this._status?.running ? RUNNING_POLL_MS : IDLE_POLL_MS;
    this.timer = window.setTimeout(async () => {
      if (Date.now() - this.listedAt > LIST_POLL_MS) {
        await this.refreshCampaigns();
      }
      await this.poll();
    }, ms);
  }

  private async refreshCampaigns(): Promise<void> {
    this.listedAt = Date.now();
    try {
      this.campaigns = (await listCampaigns()).campaigns;
    } catch (error) {
      this.showMessage(`Cannot list campaigns: ${(error as Error).message}`, true);
      return;
    }
    this.picker.textContent = '';
    for (const c of this.campaigns) {
      const option = el('option', '', `${c.tag ?? c.name} — ${c.id === '.' ? '(server root)' : c.id}`);
      option.value = c.id;
      this.picker.appendChild(option);
    }
    this.picker.hidden = !this.campaigns.length;
    const ids = this.campaigns.map(c => c.id);
    const keep = this.selectedId !== null && ids.includes(this.selectedId);
    const next = keep
      ? this.selectedId
      : (this.campaigns.find(c => c.running) ?? this.campaigns[0])?.id ?? null;
    if (next !== null) {
      this.picker.value = next;
    }
    if (next !== this.selectedId) {
      this.select(next, false);
    }
  }

  private select(id: string | null, poll = true): void {
    this.selectedId = id;
    this._status = null;
    this.results = null;
    this.detail.hidden = true;
    this.table.select(null);
    this._changed.emit();
    if (poll) {
      void this.poll();
    }
  }

  private async poll(): Promise<void> {
    const id = this.selectedId;
    if (id === null) {
      this.body.hidden = true;
      this.showMessage(
        'No campaign under the server root. Start one with `%autoresearch init --tag NAME` ' +
          'in a notebook, or `autoresearch init --tag NAME` in a terminal.'
      );
      this.schedule();
      return;
    }
    try {
      const status = await getStatus(id);
      if (id !== this.selectedId) {
        return; // the selection moved on while this was in flight
      }
      const stale = !this.results || this.results.rows.length !== status.runs || !this._status;
      this._status = status;
      if (stale) {
        const results = await getResults(id);
        if (id !== this.selectedId) {
          return;
        }
        this.results = results;
        this.renderChart();
        this.table.update(results);
      }
      this.showMessage('');
      this.body.hidden = false;
      this.renderStatus(status);
    } catch (error) {
      if (id === this.selectedId) {
        this._status = null;
        this.body.hidden = true;
        this.showMessage((error as Error).message, true);
      }
    } finally {
      this._changed.emit();
      if (id === this.selectedId) {
        this.schedule();
      }
    }
  }

  protected onResize(msg: Widget.ResizeMessage): void {
    if (this.results && Math.abs(this.chart.clientWidth - this.chartWidth) > 8) {
      this.renderChart();
    }
  }

  /** Draws the chart at the panel's width, so its text stays at its natural size. */
  private renderChart(): void {
    const results = this.results;
    this.chart.textContent = '';
    this.chart.hidden = !results?.rows.length;
    if (!results || !results.rows.length) {
      return;
    }
    this.chartWidth = this.chart.clientWidth;
    const style = getComputedStyle(this.chart);
    const inner = this.chartWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    this.chart.appendChild(progressChart(results, Math.floor(inner || 240)));
    const legend = el('div', 'jp-Autoresearch-legend');
    legend.append(
      el('span', 'jp-mod-keep', '● kept'),
      el('span', 'jp-mod-discard', '○ discarded'),
      el('span', 'jp-mod-crash', '× crash'),
      el('span', 'jp-mod-best', `— best ${results.metric} so far`)
    );
    this.chart.appendChild(legend);
  }

  private showMessage(text: string, isError = false): void {
    this.message.textContent = text;
    this.message.hidden = !text;
    this.message.classList.toggle('jp-mod-error', isError);
  }

  private renderStatus(s: ICampaignStatus): void {
    this.overview.textContent = '';
    this.overview.append(
      el('h3', 'jp-Autoresearch-tag', s.tag),
      el('p', 'jp-Autoresearch-objective',
        `${s.objective} · ${durationText(s.budget_s)} budget · keep rule ${s.keep_rule}`),
      el('p', s.stop.reached ? 'jp-Autoresearch-stop jp-mod-reached' : 'jp-Autoresearch-stop', s.stop.progress),
      el('p', 'jp-Autoresearch-counts',
        `${s.attempted} experiments: ${s.counts.keep} kept, ${s.counts.discard} discarded, ${s.counts.crash} crashed`)
    );
    if (s.current_branch !== s.branch) {
      this.overview.appendChild(
        el('p', 'jp-Autoresearch-warning',
          `Working copy is on ${s.current_branch ?? 'a detached HEAD'}, not ${s.branch}.`)
      );
    }
    this.best.textContent = '';
    if (s.best) {
      const line = el('p', 'jp-Autoresearch-bestValue');
      line.append(
        el('span', 'jp-Autoresearch-label', 'Best '),
        el('span', '', `#${s.best.experiment ?? '?'} `),
        el('strong', 'jp-Autoresearch-bestMetric', metricText(s.best.value))
      );
      if (s.baseline && s.baseline.experiment === s.best.experiment) {
        line.appendChild(el('span', 'jp-Autoresearch-delta', ' (the baseline)'));
      } else if (s.delta !== null && s.baseline) {
        line.appendChild(
          el('span', s.delta !== 0 ? 'jp-Autoresearch-delta jp-mod-improved' : 'jp-Autoresearch-delta',
            ` ${deltaText(s.delta)} vs baseline ${metricText(s.baseline.value)}`)
        );
      }
      this.best.append(line, el('p', 'jp-Autoresearch-dim', s.best.description));
    } else {
      this.best.appendChild(el('p', 'jp-Autoresearch-dim', 'No kept result yet.'));
    }
    this.renderRunning(s.running);
  }

  private renderRunning(live: ILive | null): void {
    this.running.hidden = !live;
    this.running.textContent = '';
    if (!live) {
      return;
    }
    const fraction = Math.min(Math.max(live.training_fraction ?? 0, 0), 1);
    const head = el('div', 'jp-Autoresearch-runningHead');
    head.append(
      el('span', 'jp-Autoresearch-pulse'),
      el('strong', 'jp-Autoresearch-runningTitle',
        `Running #${live.experiment}${live.run > 1 ? ` (run ${live.run})` : ''}`)
    );
    const stop = el('button', 'jp-Button jp-mod-styled jp-mod-warn jp-Autoresearch-stopButton', 'Stop');
    stop.title = 'Ask the runner to stop this experiment';
    stop.addEventListener('click', () => void this.commands.execute(CommandIDs.stop));
    head.appendChild(stop);
    const bar = el('div', 'jp-Autoresearch-bar');
    const fill = el('div', 'jp-Autoresearch-barFill');
    fill.style.width = `${(100 * fraction).toFixed(1)}%`;
    bar.appendChild(fill);
    bar.setAttribute('role', 'progressbar');
    bar.setAttribute('aria-valuenow', (100 * fraction).toFixed(0));
    const facts = [`loss ${live.loss === null ? '–' : live.loss.toFixed(4)}`];
    if (live.step !== null) {
      facts.push(`step ${live.step}`);
    }
    facts.push(`${live.rss_mb.toFixed(0)} MB`, `${durationText(live.elapsed_s)} wall`);
    this.running.append(
      head,
      el('p', 'jp-Autoresearch-runningDesc', live.description),
      bar,
      el('p', 'jp-Autoresearch-trainingTime',
        `${durationText(fraction * live.budget_s)} of ${durationText(live.budget_s)} training (${(100 * fraction).toFixed(0)}%)`),
      el('p', 'jp-Autoresearch-runningFacts', facts.join(' · '))
    );
  }

  private async showExperiment(n: number): Promise<void> {
    const id = this.selectedId;
    if (id === null) {
      return;
    }
    this.detail.hidden = false;
    this.detail.textContent = '';
    const head = el('div', 'jp-Autoresearch-detailHead');
    head.appendChild(el('h3', '', `Experiment #${n}`));
    const close = el('button', 'jp-Button jp-mod-minimal jp-Autoresearch-iconButton', '×');
    close.title = 'Close';
    close.addEventListener('click', () => {
      this.detail.hidden = true;
      this.table.select(null);
    });
    head.appendChild(close);
    this.detail.appendChild(head);
    const loading = el('p', 'jp-Autoresearch-dim', 'Loading…');
    this.detail.appendChild(loading);
    try {
      const detail = await getExperiment(id, n);
      if (id !== this.selectedId) {
        return;
      }
      loading.replaceWith(experimentDetail(detail));
    } catch (error) {
      loading.textContent = (error as Error).message;
      loading.classList.add('jp-mod-error');
    }
    this.detail.scrollIntoView({ block: 'nearest' });
  }
}

export { autoresearchIcon };
