/**
 * kernelflow's JupyterLab extension: a left-sidebar panel with the recorded
 * flow runs (newest first), one run's task runs and logs, and deployments;
 * a "Schedule" button on notebooks; executed notebooks opened read-only.
 */
import {
  ILayoutRestorer,
  type JupyterFrontEnd,
  type JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import type { DocumentRegistry } from '@jupyterlab/docregistry';
import { ToolbarButton } from '@jupyterlab/ui-components';
import { DisposableDelegate, type IDisposable } from '@lumino/disposable';
import type { Widget } from '@lumino/widgets';

import { kernelflowIcon } from './icon';
import { RunsPanel } from './panel';
import { scheduleDialog } from './schedule';
import { RunNotebookDrive } from './viewer';

const COMMAND_OPEN = 'kernelflow:open-runs';
const COMMAND_SCHEDULE = 'kernelflow:schedule-notebook';

/** A document widget's path, when it is a notebook on the server's own drive. */
function notebookPath(widget: Widget | null): string | null {
  const path = (widget as { context?: { path?: string } } | null)?.context?.path;
  if (!path?.endsWith('.ipynb') || path.includes(':')) {
    return null; // not a notebook, or one on another drive (an executed run's)
  }
  return path;
}

/** Adds the "Schedule" button to every notebook panel's toolbar. */
class ScheduleButtonExtension implements DocumentRegistry.WidgetExtension {
  constructor(private readonly _app: JupyterFrontEnd) {}

  createNew(
    widget: Widget & { toolbar?: { insertItem(i: number, n: string, w: Widget): boolean } },
    context: DocumentRegistry.Context
  ): IDisposable {
    if (context.path.includes(':')) {
      // A notebook on another drive (an executed run's read-only copy) is not deployable.
      return new DisposableDelegate(() => undefined);
    }
    const button = new ToolbarButton({
      className: 'kf-ScheduleButton',
      icon: kernelflowIcon,
      label: 'Schedule',
      tooltip: 'Schedule this notebook with kernelflow',
      onClick: () => {
        void this._app.commands.execute(COMMAND_SCHEDULE, { path: context.path });
      }
    });
    widget.toolbar?.insertItem(10, 'kernelflow-schedule', button);
    return button;
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'kernelflow:runs-panel',
  description:
    'A side panel of kernelflow flow runs, task runs, logs and deployments; ' +
    'a Schedule button on notebooks.',
  autoStart: true,
  optional: [ILayoutRestorer, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null
  ) => {
    app.serviceManager.contents.addDrive(new RunNotebookDrive());
    const panel = new RunsPanel(app);
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
    app.commands.addCommand(COMMAND_SCHEDULE, {
      label: 'Schedule this notebook (kernelflow)',
      caption: 'Deploy the current notebook on a schedule with kernelflow',
      icon: kernelflowIcon,
      isEnabled: args =>
        typeof args.path === 'string' || notebookPath(app.shell.currentWidget) !== null,
      execute: async args => {
        const path =
          typeof args.path === 'string' ? args.path : notebookPath(app.shell.currentWidget);
        if (!path) {
          return;
        }
        const created = await scheduleDialog({ notebook: path });
        if (created) {
          app.shell.activateById(panel.id);
          panel.showList();
        }
      }
    });
    app.docRegistry.addWidgetExtension('Notebook', new ScheduleButtonExtension(app));
    if (palette) {
      palette.addItem({ command: COMMAND_SCHEDULE, category: 'kernelflow' });
      palette.addItem({ command: COMMAND_OPEN, category: 'kernelflow' });
    }
  }
};

export default plugin;
