import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';

import { addCommands } from './commands';
import { CampaignModel } from './model';
import { AutoresearchSidebar } from './sidebar';
import { CommandIDs, IAutoresearchModel } from './tokens';

const PALETTE_CATEGORY = 'Autoresearch';

const plugin: JupyterFrontEndPlugin<IAutoresearchModel> = {
  id: 'autoresearch-magics:sidebar',
  description: 'Autoresearch campaigns: a sidebar with status, live run, results and chart.',
  autoStart: true,
  provides: IAutoresearchModel,
  optional: [ICommandPalette, ILayoutRestorer, ILabShell],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    labShell: ILabShell | null
  ): IAutoresearchModel => {
    const model = new CampaignModel();
    const sidebar = new AutoresearchSidebar(model, app.commands);
    addCommands(app, model);
    app.shell.add(sidebar, 'left', { rank: 650 });
    restorer?.add(sidebar, sidebar.id);
    const ids = [
      CommandIDs.openNotebook,
      CommandIDs.openConsole,
      CommandIDs.openReport,
      CommandIDs.stop,
      CommandIDs.refresh,
      CommandIDs.openExperiment,
      CommandIDs.runProposal,
      CommandIDs.skipProposal
    ];
    for (const command of ids) {
      palette?.addItem({ command, category: PALETTE_CATEGORY });
    }
    // follow the active notebook, console or file to its campaign
    labShell?.currentChanged.connect((_, change) => {
      const widget = change.newValue as any;
      const path: unknown = widget?.context?.path ?? widget?.sessionContext?.path;
      if (typeof path === 'string') {
        model.follow(path);
      }
    });
    model.changed.connect(() => {
      for (const command of ids) {
        app.commands.notifyCommandChanged(command);
      }
    });
    return model;
  }
};

export default plugin;
