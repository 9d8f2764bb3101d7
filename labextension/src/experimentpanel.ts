import { JupyterFrontEnd } from '@jupyterlab/application';
import { MainAreaWidget, ToolbarButton } from '@jupyterlab/apputils';
import { refreshIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { getExperiment } from './api';
import { diffBlock } from './diff';
import { el } from './format';
import { autoresearchIcon } from './icon';
import { IExperimentDetail } from './tokens';

/** What the panel shows: a campaign's experiment (read from the server) or a proposal's diff as given. */
export type ExperimentSource =
  | { id: string; experiment: number }
  | { id: string; proposal: number; description: string; diff: string };

/** One experiment's summary, diff (line numbers, coloured) and log tail, at the main area's width. */
export class ExperimentPanel extends Widget {
  constructor(readonly source: ExperimentSource) {
    super();
    this.addClass('jp-Autoresearch-experimentPanel');
  }

  /** Reads the experiment again and redraws (a proposal's diff is drawn as given). */
  async load(): Promise<void> {
    const source = this.source;
    if ('proposal' in source) {
      this.node.textContent = '';
      this.node.append(
        el('h2', '', `Proposal #${source.proposal} (waiting)`),
        el('p', 'jp-Autoresearch-panelSummary', source.description),
        el('h3', '', 'Diff against the best'),
        source.diff ? diffBlock(source.diff, true) : el('p', 'jp-Autoresearch-dim', 'No change.')
      );
      return;
    }
    try {
      this.render(await getExperiment(source.id, source.experiment));
    } catch (error) {
      this.node.textContent = '';
      this.node.appendChild(el('p', 'jp-mod-error', (error as Error).message));
    }
  }

  private render(detail: IExperimentDetail): void {
    const row = detail.row;
    this.node.textContent = '';
    this.node.append(
      el('h2', '', `Experiment #${detail.experiment}` + (row ? ` · ${row.status}` : ' · no results row yet')),
      el('p', 'jp-Autoresearch-panelSummary', row ? row.description : ''),
      el('p', 'jp-Autoresearch-dim',
        `campaign ${detail.id} · commit ${(detail.commit ?? '?').slice(0, 7)} · parent ${(detail.parent ?? '?').slice(0, 7)}` +
          (row?.crash_reason ? ` · crash: ${row.crash_reason}` : '')),
      el('h3', '', 'Diff against its parent'),
      detail.diff
        ? diffBlock(detail.diff + (detail.diff_truncated ? '\n… (diff cut here)' : ''), true)
        : el('p', 'jp-Autoresearch-dim', 'No change: a re-run of its parent.'),
      el('h3', '', `Log tail (${detail.log_path})`),
      detail.log_tail.length
        ? el('pre', 'jp-Autoresearch-log', detail.log_tail.join('\n'))
        : el('p', 'jp-Autoresearch-dim', 'No log.')
    );
  }
}

function panelId(source: ExperimentSource): string {
  const what = 'proposal' in source ? `proposal-${source.proposal}` : `experiment-${source.experiment}`;
  return `autoresearch-${what}-${source.id.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

/** Opens (or brings forward) the main-area tab of one experiment or proposal; returns it. */
export async function openExperimentPanel(
  app: JupyterFrontEnd,
  source: ExperimentSource,
  campaignLabel: string
): Promise<MainAreaWidget<ExperimentPanel>> {
  const id = panelId(source);
  for (const widget of app.shell.widgets('main')) {
    if (widget.id === id) {
      app.shell.activateById(id);
      return widget as MainAreaWidget<ExperimentPanel>;
    }
  }
  const content = new ExperimentPanel(source);
  const widget = new MainAreaWidget({ content });
  widget.id = id;
  const what = 'proposal' in source ? `proposal #${source.proposal}` : `#${source.experiment}`;
  widget.title.label = `${campaignLabel} ${what}`;
  widget.title.caption = `Autoresearch campaign ${source.id}: ${what}, its diff and log`;
  widget.title.icon = autoresearchIcon;
  widget.title.closable = true;
  widget.toolbar.addItem(
    'refresh',
    new ToolbarButton({ icon: refreshIcon, tooltip: 'Read the experiment again', onClick: () => void content.load() })
  );
  app.shell.add(widget, 'main');
  app.shell.activateById(id);
  await content.load();
  return widget;
}
