/**
 * The run list view: recent flow runs (newest first, filtered, a page at a
 * time) with the deployments below them and the scheduler line above.
 */
import { getJSON, type IRunList } from '../api';
import { h } from '../dom';
import { PAGE, type PanelStore } from '../store';
import { focusKey, restoreFocus, unfinished } from './common';
import type { DeploymentsView, SchedulerLine } from './deployments';
import type { FilterBar } from './filters';
import { runRow } from './runRow';

/** The parts of the panel the run list fills in. */
export interface IRunsViewParts {
  /** Where the list and the deployments are drawn. */
  body: HTMLElement;
  filters: FilterBar;
  deployments: DeploymentsView;
  scheduler: SchedulerLine;
}

/** Fetches and draws the list of runs. */
export class RunsView {
  constructor(
    private readonly _store: PanelStore,
    private readonly _parts: IRunsViewParts
  ) {}

  /** Fetch the runs, deployments and scheduler; draw what changed. */
  async load(): Promise<void> {
    const store = this._store;
    const { body, filters, deployments: deploymentsView, scheduler: schedulerLine } = this._parts;
    const query = store.query();
    const key0 = JSON.stringify(query);
    let runs: IRunList;
    let deployments: Awaited<ReturnType<DeploymentsView['fetch']>>;
    let scheduler: Awaited<ReturnType<SchedulerLine['fetch']>>;
    try {
      [runs, deployments, scheduler] = await Promise.all([
        getJSON<IRunList>('runs', query),
        deploymentsView.fetch(),
        schedulerLine.fetch()
      ]);
    } catch (error) {
      store.setStatus(`Could not load runs: ${(error as Error).message}`, true);
      return;
    }
    if (store.selected !== null || key0 !== JSON.stringify(store.query())) {
      return; // the user moved on while we waited
    }
    if (deployments !== null) {
      filters.setDeployments(deployments.deployments.map(d => d.name));
    }
    filters.addFlowNames(runs.runs.map(run => run.flow_name));
    schedulerLine.show(scheduler);
    const count = runs.runs.length;
    store.setStatus(
      `${count}${runs.has_more ? '+' : ''} run${count === 1 ? '' : 's'}` +
        ` · updated ${new Date().toLocaleTimeString([], { hour12: false })}`
    );
    // Unchanged data is not redrawn (the reader keeps hover, focus and selection),
    // except that an unfinished run's duration grows with the clock.
    const clock = runs.runs.some(unfinished) ? Date.now() : 0;
    const key = JSON.stringify([runs, deployments, deploymentsView.error, clock]);
    if (key === store.rendered) {
      return;
    }
    store.rendered = key;
    // Redrawing must not throw the keyboard focus out of the panel.
    const focused = focusKey(body);
    body.replaceChildren(
      this._runList(runs, query.state as string),
      deploymentsView.render(deployments)
    );
    restoreFocus(body, focused);
  }

  private _runList(runs: IRunList, state: string): HTMLElement {
    const store = this._store;
    if (runs.runs.length === 0) {
      const filtered = Object.entries(store.query()).some(([k, v]) => k !== 'limit' && v);
      return h(
        'div',
        { class: 'kf-Placeholder kf-RunList-empty' },
        state
          ? `No flow runs in state ${state}.`
          : filtered
            ? 'No flow runs match these filters.'
            : 'No flow runs recorded yet. Run a @flow in a notebook and it appears here.'
      );
    }
    const list = h(
      'ul',
      { class: 'kf-RunList', 'aria-label': 'Flow runs' },
      runs.runs.map(run => runRow(store, run))
    );
    if (!runs.has_more) {
      return list;
    }
    const more = h(
      'button',
      { type: 'button', class: 'kf-More jp-Button jp-mod-styled' },
      'Load more'
    );
    more.addEventListener('click', () => {
      store.limit += PAGE;
      void store.refresh();
    });
    return h('div', {}, list, more);
  }
}
