/**
 * The kernelflow runs panel: recent flow runs, one run's task runs and logs,
 * and the notebook deployments, read from the server extension's REST API.
 *
 * This module is the shell: it lays out the toolbar, the filters, the
 * scheduler and status lines and the body, and hands the body to one view at
 * a time (`views/runs.ts` with `views/deployments.ts`, or `views/detail.ts`).
 * The views share their state through `store.ts`.
 *
 * It refreshes on demand (the refresh button) and every few seconds while it
 * is visible; a hidden panel (sidebar collapsed, browser tab in the
 * background) asks the server nothing.
 */
import type { JupyterFrontEnd } from '@jupyterlab/application';
import { refreshIcon } from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { h } from './dom';
import { PanelStore } from './store';
import { DeploymentsView, SchedulerLine } from './views/deployments';
import { RunDetailView } from './views/detail';
import { FilterBar } from './views/filters';
import { RunsView } from './views/runs';

export { LOG_PAGE, REFRESH_MS } from './store';

/** The left-sidebar widget. */
export class RunsPanel extends Widget {
  constructor(app: JupyterFrontEnd | null = null) {
    super();
    this.id = 'kernelflow-runs';
    this.addClass('kf-RunsPanel');
    this.title.caption = 'kernelflow runs';

    this._status = h('div', { class: 'kf-Status', role: 'status' });
    this._body = h('div', { class: 'kf-Body' });
    this._store = new PanelStore({
      load: () => this._load(),
      showStatus: (text, error) => {
        this._status.textContent = text;
        this._status.classList.toggle('kf-mod-error', error);
      },
      showLoading: loading => this.node.classList.toggle('kf-mod-loading', loading),
      isVisible: () => this.isVisible,
      showOpening: () =>
        this._body.replaceChildren(h('div', { class: 'kf-Placeholder' }, 'Loading run…'))
    });
    const filters = new FilterBar(this._store);
    const scheduler = new SchedulerLine();
    this._runs = new RunsView(this._store, {
      body: this._body,
      filters,
      deployments: new DeploymentsView(this._store),
      scheduler
    });
    this._detail = new RunDetailView(this._store, this._body, app);

    const refreshButton = h('button', {
      type: 'button',
      class: 'kf-RefreshButton jp-Button jp-mod-minimal',
      title: 'Refresh',
      'aria-label': 'Refresh'
    });
    refreshIcon.element({ container: refreshButton, height: '16px', width: '16px' });
    refreshButton.addEventListener('click', () => void this.refresh());
    this.node.append(
      h(
        'div',
        { class: 'kf-Toolbar' },
        h('span', { class: 'kf-Title' }, 'Flow runs'),
        refreshButton
      ),
      filters.node,
      scheduler.node,
      this._status,
      this._body
    );
  }

  /** Fetch what the current view shows and render it if it changed. */
  refresh(): Promise<void> {
    return this._store.refresh();
  }

  /** Show one run's task runs and logs. */
  showRun(id: string): void {
    this._store.showRun(id);
  }

  /** Go back to the list of runs. */
  showList(): void {
    this._store.showList();
  }

  dispose(): void {
    this._store.stopPolling();
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.refresh();
    this._store.startPolling();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible) {
      void this.refresh();
      this._store.startPolling();
    }
  }

  protected onBeforeHide(msg: Message): void {
    this._store.stopPolling();
    super.onBeforeHide(msg);
  }

  protected onBeforeDetach(msg: Message): void {
    this._store.stopPolling();
    super.onBeforeDetach(msg);
  }

  /** The view the store's selection names draws the body. */
  private _load(): Promise<void> {
    const selected = this._store.selected;
    return selected !== null ? this._detail.load(selected) : this._runs.load();
  }

  private readonly _store: PanelStore;
  private readonly _status: HTMLDivElement;
  private readonly _body: HTMLDivElement;
  private readonly _runs: RunsView;
  private readonly _detail: RunDetailView;
}
