import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';

import { addCommands } from './commands';
import { AutoresearchSidebar } from './sidebar';
import { CommandIDs } from './tokens';

const PALETTE_CATEGORY = 'Autoresearch';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'autoresearch-magics:sidebar',
  description: 'Autoresearch campaigns: a sidebar with status, live run, results and chart.',
  autoStart: true,
  optional: [ICommandPalette, ILayoutRestorer, ILabShell],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    labShell: ILabShell | null
  ) => {
    const sidebar = new AutoresearchSidebar(app.commands);
    addCommands(app, sidebar);
    app.shell.add(sidebar, 'left', { rank: 650 });
    restorer?.add(sidebar, sidebar.id);
    const ids = [
      CommandIDs.openNotebook,
      CommandIDs.openConsole,
      CommandIDs.openReport,
      CommandIDs.stop,
      CommandIDs.refresh
    ];
    for (const command of ids) {
      palette?.addItem({ command, category: PALETTE_CATEGORY });
    }
    // follow the active notebook, console or file to its campaign
    labShell?.currentChanged.connect((_, change) => {
      const widget = change.newValue as any;
      const path: unknown = widget?.context?.path ?? widget?.sessionContext?.path;
      if (typeof path === 'string') {
        sidebar.follow(path);
      }
    });
    sidebar.changed.connect(() => {
      for (const command of ids) {
        app.commands.notifyCommandChanged(command);
      }
    });
  }
};

export default plugin;
