import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';

import { decideProposal, getStatus, requestStop } from './api';
import { openExperimentPanel } from './experimentpanel';
import { CampaignModel, waitingProposal } from './model';
import { CommandIDs, ICampaignStatus } from './tokens';

// Only what these commands use of a NotebookPanel / ConsolePanel, so the extension does not
// need those packages at build time.
interface INotebookPanelLike {
  context: { ready: Promise<void> };
  sessionContext: { ready: Promise<void> };
  content: {
    activeCell: { model: { sharedModel: { setSource(source: string): void } } } | null;
  };
}

interface IConsolePanelLike {
  sessionContext: { ready: Promise<void> };
  console: { inject(code: string): Promise<void> };
}

/** Returns the folder of campaign `id` as the contents API names it ("" for the server root). */
function folderOf(id: string): string {
  return id === '.' ? '' : id;
}

function frameCode(where: string, comment: string): string {
  return [
    'from autoresearch_magics import Campaign',
    '',
    `campaign = Campaign.open(${where})  # ${comment}`,
    'results = campaign.frame()',
    'results'
  ].join('\n');
}

/** Registers the palette commands; each acts on `args.id` or on the sidebar's campaign. */
export function addCommands(app: JupyterFrontEnd, model: CampaignModel): void {
  const { commands } = app;
  const idOf = (args: any): string | null => (args?.id as string) ?? model.selected;
  // naming the kernel up front skips the "Select Kernel" dialog
  const kernelName = () => app.serviceManager.kernelspecs.specs?.default ?? 'python3';
  const hasCampaign = (args: any) => idOf(args) !== null;

  async function statusOf(args: any): Promise<ICampaignStatus | null> {
    const id = idOf(args);
    if (id === null) {
      Notification.warning('No campaign selected: open the Autoresearch sidebar and pick one.');
      return null;
    }
    try {
      return await getStatus(id);
    } catch (error) {
      Notification.error(`Campaign ${id}: ${(error as Error).message}`);
      return null;
    }
  }

  commands.addCommand(CommandIDs.openNotebook, {
    label: 'Open Campaign Results as DataFrame in a Notebook',
    caption: 'Create a notebook in the campaign folder that loads results.tsv as a DataFrame',
    isEnabled: hasCampaign,
    execute: async args => {
      const status = await statusOf(args);
      if (!status) {
        return;
      }
      const panel: INotebookPanelLike = await commands.execute('notebook:create-new', {
        cwd: folderOf(status.id),
        kernelName: kernelName()
      });
      await panel.context.ready;
      panel.content.activeCell?.model.sharedModel.setSource(
        frameCode('"."', 'this notebook sits in the campaign folder')
      );
      await panel.sessionContext.ready;
      await commands.execute('notebook:run-cell');
    }
  });

  commands.addCommand(CommandIDs.openConsole, {
    label: 'Open Campaign Results as DataFrame in a Console',
    caption: 'Start a console that loads results.tsv as a DataFrame',
    isEnabled: hasCampaign,
    execute: async args => {
      const status = await statusOf(args);
      if (!status) {
        return;
      }
      const panel: IConsolePanelLike = await commands.execute('console:create', {
        basePath: folderOf(status.id),
        kernelPreference: { name: kernelName() },
        activate: true
      });
      await panel.sessionContext.ready;
      await panel.console.inject(frameCode(JSON.stringify(status.root), `campaign ${status.tag}`));
    }
  });

  commands.addCommand(CommandIDs.openReport, {
    label: 'Open Campaign Report',
    caption: 'Open the campaign summary written by %autoresearch report',
    isEnabled: hasCampaign,
    execute: async args => {
      const status = await statusOf(args);
      if (!status) {
        return;
      }
      const { name, exists } = status.report;
      if (exists) {
        await commands.execute('docmanager:open', {
          path: PathExt.join(folderOf(status.id), name),
          factory: 'Markdown Preview'
        });
        return;
      }
      await showDialog({
        title: 'No report yet',
        body:
          `Campaign ${status.tag} has no ${name} yet. Run \`%autoresearch report\` in a notebook ` +
          `on this campaign (or \`autoresearch report\` in its folder) to write it, then open it here.`,
        buttons: [Dialog.okButton()]
      });
    }
  });

  commands.addCommand(CommandIDs.stop, {
    label: 'Stop the Running Experiment',
    caption: "Ask the campaign's runner to stop its running experiment",
    isEnabled: args => hasCampaign(args) && (idOf(args) !== model.selected || !!model.status?.running),
    execute: async args => {
      const status = await statusOf(args);
      if (!status) {
        return;
      }
      const live = status.running;
      if (!live) {
        Notification.info(`No experiment is running in campaign ${status.tag}.`);
        return;
      }
      const answer = await showDialog({
        title: 'Stop the running experiment?',
        body: `Experiment #${live.experiment} “${live.description}” of campaign ${status.tag}. ` +
          'Its runner stops the training process and logs the attempt.',
        buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Stop' })]
      });
      if (!answer.button.accept) {
        return;
      }
      const { requested } = await requestStop(status.id);
      if (requested) {
        Notification.success(`Stop requested for experiment #${live.experiment} of ${status.tag}.`);
      } else {
        Notification.info(`Experiment #${live.experiment} had already finished.`);
      }
      await model.refresh();
    }
  });

  commands.addCommand(CommandIDs.refresh, {
    label: 'Refresh Autoresearch Campaigns',
    execute: () => model.refresh()
  });

  // the experiment a command acts on: its args, else the table row under a right click, else
  // the sidebar's selected experiment
  const experimentOf = (args: any): number | null => {
    if (typeof args?.experiment === 'number') {
      return args.experiment;
    }
    const row = app.contextMenuHitTest(node => node.classList.contains('jp-Autoresearch-row'));
    const n = Number(row?.dataset.experiment);
    return row && Number.isFinite(n) ? n : model.experiment;
  };

  commands.addCommand(CommandIDs.openExperiment, {
    label: args => (args?.proposal ? 'Open the Waiting Proposal’s Diff' : 'Open Experiment Diff and Log'),
    caption: 'Open an experiment’s diff and log tail in the main area, where they are readable',
    isEnabled: args => hasCampaign(args) &&
      (args?.proposal ? !!waitingProposal(model.status) : experimentOf(args) !== null),
    execute: async args => {
      const id = idOf(args);
      const tag = model.status?.tag ?? id ?? '';
      if (id === null) {
        return;
      }
      if (args?.proposal) {
        const p = waitingProposal(model.status);
        if (p) {
          await openExperimentPanel(app, { id, proposal: p.experiment, description: p.description, diff: p.diff }, tag);
        }
        return;
      }
      const experiment = experimentOf(args);
      if (experiment !== null) {
        await openExperimentPanel(app, { id, experiment }, tag);
      }
    }
  });

  const decide = (decision: 'run' | 'skip') => async (args: any) => {
    const id = idOf(args);
    const waiting = waitingProposal(model.status);
    const experiment = typeof args?.experiment === 'number' ? args.experiment : waiting?.experiment;
    if (id === null || experiment === undefined) {
      Notification.info('No proposal is waiting for a decision.');
      return;
    }
    await decideProposal(id, experiment, decision, (args?.reason as string) ?? '');
    await model.refresh();
  };
  const waiting = () => !!waitingProposal(model.status);
  commands.addCommand(CommandIDs.runProposal, {
    label: 'Run the Waiting Proposal',
    caption: 'Approve the proposal the campaign waits on: it runs as the next experiment',
    isEnabled: waiting,
    execute: decide('run')
  });
  commands.addCommand(CommandIDs.skipProposal, {
    label: 'Skip the Waiting Proposal',
    caption: 'Do not run the proposal the campaign waits on (args.reason is recorded)',
    isEnabled: waiting,
    execute: decide('skip')
  });

  app.contextMenu.addItem({ command: CommandIDs.openExperiment, selector: '.jp-Autoresearch-row', rank: 1 });
}
