/**
 * kernelflow's JupyterLab extension: a left-sidebar panel with the recorded
 * flow runs (newest first), one run's task runs and logs, and deployments.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';

import { kernelflowIcon } from './icon';
import { RunsPanel } from './panel';

const COMMAND_OPEN = 'kernelflow:open-runs';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'kernelflow:runs-panel',
  description: 'A side panel listing kernelflow flow runs, task runs, logs and deployments.',
  autoStart: true,
  optional: [ILayoutRestorer],
  activate: (app: JupyterFrontEnd, restorer: ILayoutRestorer | null) => {
    const panel = new RunsPanel();
    panel.title.icon = kernelflowIcon;
    app.shell.add(panel, 'left', { rank: 600 });
    if (restorer) {
      restorer.add(panel, panel.id);
    }
    app.commands.addCommand(COMMAND_OPEN, {
      label: 'Show kernelflow Runs',
      caption: 'Open the kernelflow runs panel in the left sidebar',
      execute: () => app.shell.activateById(panel.id)
    });
  }
};

export default plugin;
