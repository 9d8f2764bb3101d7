import { CommandRegistry } from '@lumino/commands';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';
import { refreshIcon } from '@jupyterlab/ui-components';

import { ProgressChartView } from './chart';
import { ExperimentDetailView } from './detail';
import { el } from './format';
import { autoresearchIcon } from './icon';
import { CampaignModel, waitingProposal } from './model';
import { OverviewView } from './overview';
import { ProposalView } from './proposal';
import { RunningView } from './running';
import { ResultsTable } from './table';
import { CommandIDs } from './tokens';

const NO_CAMPAIGN =
  'No campaign under the server root. Start one with `%autoresearch init --tag NAME` ' +
  'in a notebook, or `autoresearch init --tag NAME` in a terminal.';

/**
 * The "Autoresearch" left panel: a view of a `CampaignModel`. Every part is built once and
 * updated in place when the model changes, so buttons and rows keep their identity.
 */
export class AutoresearchSidebar extends Widget {
  private picker = el('select', 'jp-Autoresearch-picker');
  private pickerIds = '';
  private message = el('div', 'jp-Autoresearch-message');
  private body = el('div', 'jp-Autoresearch-body');
  private overview = new OverviewView();
  private proposal: ProposalView;
  private running: RunningView;
  private chart: ProgressChartView;
  private table: ResultsTable;
  private detail: ExperimentDetailView;

  constructor(
    readonly model: CampaignModel,
    private commands: CommandRegistry
  ) {
    super();
    this.id = 'autoresearch-sidebar';
    this.addClass('jp-Autoresearch');
    this.title.icon = autoresearchIcon;
    this.title.caption = 'Autoresearch';
    const select = (n: number) => model.selectExperiment(n);
    const open = (n: number) => void commands.execute(CommandIDs.openExperiment, { experiment: n });
    this.proposal = new ProposalView({
      decide: async (p, decision, reason) => {
        const command = decision === 'run' ? CommandIDs.runProposal : CommandIDs.skipProposal;
        await commands.execute(command, { experiment: p.experiment, reason });
      },
      open: () => void commands.execute(CommandIDs.openExperiment, { proposal: true })
    });
    this.running = new RunningView(() => void commands.execute(CommandIDs.stop), select);
    this.chart = new ProgressChartView(select);
    this.table = new ResultsTable(select, open);
    this.detail = new ExperimentDetailView(
      () => model.experiment !== null && open(model.experiment),
      () => model.selectExperiment(null)
    );
    this.build();
    model.changed.connect(this.onModelChanged, this);
    model.experimentChanged.connect(this.onExperimentChanged, this);
  }

  private build(): void {
    const header = el('div', 'jp-Autoresearch-header');
    header.appendChild(el('h2', 'jp-Autoresearch-title', 'Autoresearch'));
    const refresh = el('button', 'jp-Autoresearch-iconButton jp-Button jp-mod-minimal');
    refresh.title = 'Refresh campaigns';
    refresh.setAttribute('aria-label', 'Refresh campaigns');
    refreshIcon.element({ container: refresh });
    refresh.addEventListener('click', () => void this.model.refresh());
    header.appendChild(refresh);
    this.picker.title = 'Campaign (folder relative to the server root)';
    this.picker.addEventListener('change', () => this.model.selectCampaign(this.picker.value));
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
    this.body.append(
      this.overview.node, actions, this.overview.bestNode, this.proposal.node, this.running.node,
      this.chart.node, this.table.node, this.detail.node
    );
    this.body.hidden = true;
    this.node.append(header, this.picker, this.message, this.body);
  }

  protected onAfterShow(msg: Message): void {
    this.model.active = true;
  }

  protected onBeforeHide(msg: Message): void {
    this.model.active = false;
  }

  protected onResize(msg: Widget.ResizeMessage): void {
    this.chart.resize();
    this.running.resize();
    this.detail.resize();
  }

  dispose(): void {
    this.model.dispose();
    super.dispose();
  }

  private onModelChanged(): void {
    const model = this.model;
    const ids = model.campaigns.map(c => c.id).join('\n');
    if (ids !== this.pickerIds) {
      this.pickerIds = ids;
      this.picker.textContent = '';
      for (const c of model.campaigns) {
        const option = el('option', '', `${c.tag ?? c.name} — ${c.id === '.' ? '(server root)' : c.id}`);
        option.value = c.id;
        this.picker.appendChild(option);
      }
    }
    this.picker.hidden = !model.campaigns.length;
    if (model.selected !== null && this.picker.value !== model.selected) {
      this.picker.value = model.selected;
    }
    const status = model.status;
    const text = model.error || (model.listed && !model.campaigns.length ? NO_CAMPAIGN : '');
    this.message.textContent = text;
    this.message.hidden = !text;
    this.message.classList.toggle('jp-mod-error', !!model.error);
    this.body.hidden = !status;
    if (!status) {
      return;
    }
    this.overview.update(status);
    this.proposal.update(waitingProposal(status));
    this.updateRunning();
    this.chart.update(model.results, model.experiment);
    this.table.update(model.results);
    this.table.select(model.experiment);
  }

  /** Shows the running run; a proposal still waiting for its decision is not running yet. */
  private updateRunning(): void {
    const model = this.model;
    const waiting = waitingProposal(model.status);
    const live = waiting && model.live?.experiment === waiting.experiment ? null : model.live;
    this.running.update(live, model.peakRssMb, model.curveOf(live?.experiment ?? null));
  }

  private onExperimentChanged(): void {
    const model = this.model;
    const live = model.live;
    this.chart.update(model.results, model.experiment);
    this.table.select(model.experiment);
    this.updateRunning();
    this.detail.update({
      experiment: model.experiment,
      detail: model.detail,
      error: model.detailError,
      curve: model.curveOf(model.experiment),
      curveMessage: model.curvesUnavailable,
      running: live?.experiment === model.experiment
    });
    if (model.experiment !== null && !model.detail) {
      this.detail.node.scrollIntoView({ block: 'nearest' });
    }
  }
}

export { autoresearchIcon };
