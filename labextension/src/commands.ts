import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';

import { getStatus, requestStop } from './api';
import { AutoresearchSidebar } from './sidebar';
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
    `campaign = Campaign.open(${where}, recover=False)  # ${comment}`,
    'results = campaign.frame()',
    'results'
  ].join('\n');
}

/** Registers the palette commands; each acts on `args.id` or on the sidebar's campaign. */
export function addCommands(app: JupyterFrontEnd, sidebar: AutoresearchSidebar): void {
  const { commands } = app;
  const idOf = (args: any): string | null => (args?.id as string) ?? sidebar.selected;
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
    isEnabled: args => hasCampaign(args) && (idOf(args) !== sidebar.selected || !!sidebar.status?.running),
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
      await sidebar.refresh();
    }
  });

  commands.addCommand(CommandIDs.refresh, {
    label: 'Refresh Autoresearch Campaigns',
    execute: () => sidebar.refresh()
  });
}
