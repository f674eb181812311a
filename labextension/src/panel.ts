/**
 * The kernelflow runs panel: recent flow runs, one run's task runs and logs,
 * and the notebook deployments, read from the server extension's REST API.
 *
 * It refreshes on demand (the refresh button) and every few seconds while it
 * is visible; a hidden panel (sidebar collapsed, browser tab in the
 * background) asks the server nothing.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { refreshIcon } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import {
  ApiError,
  deploymentPath,
  getJSON,
  IDeployment,
  IDeploymentList,
  ILogLine,
  ILogPage,
  ILogPageRequest,
  IPause,
  IRunDetail,
  IRunList,
  IRunStarted,
  IRunSummary,
  ISchedulerInfo,
  ITaskRun,
  request,
  runPath
} from './api';
import { confirmDialog } from './dialogs';
import { h, stateBadge } from './dom';
import {
  formatTime,
  relativeTime,
  runDuration,
  STATE_FILTERS,
  stateClass
} from './format';
import { paramSignature, ParamInputs } from './params';
import { runNowDialog, scheduleDialog, serverRelative } from './schedule';
import { openRunHtml, openRunNotebook } from './viewer';

/** Milliseconds between refreshes while the panel is visible. */
export const REFRESH_MS = 5000;

/** Runs fetched per page ("Load more" asks for one more page). */
const PAGE = 50;

/** Log lines per page of a run's logs. */
export const LOG_PAGE = 200;

/** State types after which a run no longer changes. */
const FINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'CRASHED']);

function badge(name: string | null, type: string | null): HTMLSpanElement {
  return stateBadge(name, type, stateClass(name, type));
}

/** A run that started and has not ended: its shown duration changes every second. */
function unfinished(run: { start_time: string | null; end_time: string | null }): boolean {
  return run.start_time !== null && run.end_time === null;
}

function timeCell(iso: string | null): HTMLElement {
  return h('time', { datetime: iso, title: relativeTime(iso) }, formatTime(iso));
}

/** What kind of run a row is; older servers send no `kind`, only a parent id. */
function runKind(run: IRunSummary): string {
  return run.kind || (run.parent_flow_run_id ? 'subflow' : 'flow');
}

/** A small outlined label: `subflow`, `session`, `deployment`. */
function kindBadge(kind: string): HTMLElement | null {
  if (kind === 'flow') {
    return null; // the common case needs no label
  }
  return h('span', { class: `kf-KindBadge kf-kind-${kind}`, 'data-kf-kind': kind }, kind);
}

/**
 * A button that acts on its own: its click does not also open the row it
 * sits in. `act` may return a promise; the button is disabled meanwhile.
 */
function actionButton(
  label: string,
  action: string,
  act: () => Promise<unknown> | void,
  title?: string,
  danger = false
): HTMLButtonElement {
  const button = h(
    'button',
    {
      type: 'button',
      class: `kf-Action jp-Button jp-mod-styled jp-mod-reject${danger ? ' kf-mod-danger' : ''}`,
      'data-kf-action': action,
      title: title || label
    },
    label
  );
  button.addEventListener('click', event => {
    event.stopPropagation();
    button.disabled = true;
    Promise.resolve(act()).finally(() => {
      button.disabled = false;
    });
  });
  // Enter and Space on a focused button click it; keep them from the row.
  button.addEventListener('keydown', event => event.stopPropagation());
  return button;
}

/** `yyyy-mm-dd` (a date input's value) to the start of that day in the browser's zone. */
function dayStart(value: string): string | undefined {
  if (!value) {
    return undefined;
  }
  const day = new Date(`${value}T00:00:00`);
  return isNaN(day.getTime()) ? undefined : day.toISOString();
}

function dayEnd(value: string): string | undefined {
  if (!value) {
    return undefined;
  }
  const day = new Date(`${value}T00:00:00`);
  if (isNaN(day.getTime())) {
    return undefined;
  }
  day.setDate(day.getDate() + 1);
  return day.toISOString();
}

/** The left-sidebar widget. */
export class RunsPanel extends Widget {
  constructor(private readonly _app: JupyterFrontEnd | null = null) {
    super();
    this.id = 'kernelflow-runs';
    this.addClass('kf-RunsPanel');
    this.title.caption = 'kernelflow runs';

    const filterChanged = () => {
      this._limit = PAGE;
      this._selected = null;
      void this.refresh();
    };
    this._stateFilter = h(
      'select',
      {
        class: 'kf-StateFilter kf-Filter',
        title: 'Show only runs in this state',
        'aria-label': 'State'
      },
      STATE_FILTERS.map(f => h('option', { value: f.value }, f.label))
    );
    this._flowFilter = h(
      'select',
      {
        class: 'kf-FlowFilter kf-Filter',
        title: 'Show only runs of this flow',
        'aria-label': 'Flow'
      },
      h('option', { value: '' }, 'All flows')
    );
    this._deploymentFilter = h(
      'select',
      {
        class: 'kf-DeploymentFilter kf-Filter',
        title: 'Show only runs of this deployment',
        'aria-label': 'Deployment'
      },
      h('option', { value: '' }, 'All deployments')
    );
    this._sinceFilter = h('input', {
      type: 'date',
      class: 'kf-SinceFilter kf-Filter',
      title: 'Runs created on or after this day',
      'aria-label': 'From day'
    });
    this._untilFilter = h('input', {
      type: 'date',
      class: 'kf-UntilFilter kf-Filter',
      title: 'Runs created on or before this day',
      'aria-label': 'To day'
    });
    for (const filter of [
      this._stateFilter,
      this._flowFilter,
      this._deploymentFilter,
      this._sinceFilter,
      this._untilFilter
    ]) {
      filter.addEventListener('change', filterChanged);
    }
    const refreshButton = h('button', {
      type: 'button',
      class: 'kf-RefreshButton jp-Button jp-mod-minimal',
      title: 'Refresh',
      'aria-label': 'Refresh'
    });
    refreshIcon.element({ container: refreshButton, height: '16px', width: '16px' });
    refreshButton.addEventListener('click', () => void this.refresh());

    this._status = h('div', { class: 'kf-Status', role: 'status' });
    this._scheduler = h('div', { class: 'kf-Scheduler' });
    this._body = h('div', { class: 'kf-Body' });
    this.node.appendChild(
      h(
        'div',
        { class: 'kf-Toolbar' },
        h('span', { class: 'kf-Title' }, 'Flow runs'),
        refreshButton
      )
    );
    this.node.appendChild(
      h(
        'div',
        { class: 'kf-Filters', role: 'group', 'aria-label': 'Filters' },
        this._stateFilter,
        this._flowFilter,
        this._deploymentFilter,
        h(
          'span',
          { class: 'kf-DateRange' },
          this._sinceFilter,
          h('span', { 'aria-hidden': 'true' }, '–'),
          this._untilFilter
        )
      )
    );
    this.node.appendChild(this._scheduler);
    this.node.appendChild(this._status);
    this.node.appendChild(this._body);
  }

  /** Fetch what the current view shows and render it if it changed. */
  async refresh(): Promise<void> {
    if (this._loading) {
      this._again = true;
      return;
    }
    this._loading = true;
    this.node.classList.add('kf-mod-loading');
    try {
      if (this._selected !== null) {
        await this._refreshDetail(this._selected);
      } else {
        await this._refreshList();
      }
    } finally {
      this._loading = false;
      this.node.classList.remove('kf-mod-loading');
    }
    if (this._again) {
      this._again = false;
      await this.refresh();
    }
  }

  /** Show one run's task runs and logs. */
  showRun(id: string): void {
    this._selected = id;
    this._logPage = null;
    this._rendered = '';
    this._body.replaceChildren(h('div', { class: 'kf-Placeholder' }, 'Loading run…'));
    void this.refresh();
  }

  /** Go back to the list of runs. */
  showList(): void {
    this._selected = null;
    this._rendered = '';
    void this.refresh();
  }

  dispose(): void {
    this._stopTimer();
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.refresh();
    this._startTimer();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible) {
      void this.refresh();
      this._startTimer();
    }
  }

  protected onBeforeHide(msg: Message): void {
    this._stopTimer();
    super.onBeforeHide(msg);
  }

  protected onBeforeDetach(msg: Message): void {
    this._stopTimer();
    super.onBeforeDetach(msg);
  }

  private _startTimer(): void {
    if (this._timer === null) {
      this._timer = window.setInterval(() => {
        if (this.isVisible && document.visibilityState === 'visible') {
          void this.refresh();
        }
      }, REFRESH_MS);
    }
  }

  private _stopTimer(): void {
    if (this._timer !== null) {
      window.clearInterval(this._timer);
      this._timer = null;
    }
  }

  private _setStatus(text: string, error = false): void {
    this._status.textContent = text;
    this._status.classList.toggle('kf-mod-error', error);
  }

  /** Run `act`; report its failure in the status line; refresh either way. */
  private async _act(what: string, act: () => Promise<unknown>): Promise<void> {
    try {
      await act();
      this._setStatus(`${what}: done`);
    } catch (error) {
      this._setStatus(`${what} failed: ${(error as Error).message}`, true);
    }
    this._rendered = '';
    await this.refresh();
  }

  /** The filters' current values, as the server's query parameters. */
  private _query(): Record<string, string | number | undefined> {
    return {
      state: this._stateFilter.value,
      flow: this._flowFilter.value,
      deployment: this._deploymentFilter.value,
      since: dayStart(this._sinceFilter.value),
      until: dayEnd(this._untilFilter.value),
      limit: this._limit
    };
  }

  /** Keep `select`'s options to `values` (plus its current value), its first option first. */
  private _fillOptions(select: HTMLSelectElement, values: Iterable<string>): void {
    const wanted = new Set(values);
    if (select.value) {
      wanted.add(select.value);
    }
    const sorted = [...wanted].sort((a, b) => a.localeCompare(b));
    const current = [...select.options].slice(1).map(o => o.value);
    if (JSON.stringify(current) === JSON.stringify(sorted)) {
      return; // leave an open drop-down alone
    }
    const value = select.value;
    const first = select.options[0];
    select.replaceChildren(first, ...sorted.map(v => h('option', { value: v }, v)));
    select.value = value;
  }

  private async _refreshList(): Promise<void> {
    const query = this._query();
    const key0 = JSON.stringify(query);
    let runs: IRunList;
    let deployments: IDeploymentList | null = null;
    let scheduler: ISchedulerInfo | null = null;
    try {
      [runs, deployments, scheduler] = await Promise.all([
        getJSON<IRunList>('runs', query),
        getJSON<IDeploymentList>('deployments').catch((error: ApiError) => {
          this._deploymentsError = error.message;
          return null;
        }),
        getJSON<ISchedulerInfo>('scheduler').catch((error: ApiError) => {
          this._schedulerError = error.message;
          return null;
        })
      ]);
    } catch (error) {
      this._setStatus(`Could not load runs: ${(error as Error).message}`, true);
      return;
    }
    if (this._selected !== null || key0 !== JSON.stringify(this._query())) {
      return; // the user moved on while we waited
    }
    if (deployments !== null) {
      this._deploymentsError = null;
      this._fillOptions(
        this._deploymentFilter,
        deployments.deployments.map(d => d.name)
      );
    }
    for (const run of runs.runs) {
      if (run.flow_name) {
        this._flowNames.add(run.flow_name);
      }
    }
    this._fillOptions(this._flowFilter, this._flowNames);
    this._showScheduler(scheduler);
    const count = runs.runs.length;
    this._setStatus(
      `${count}${runs.has_more ? '+' : ''} run${count === 1 ? '' : 's'}` +
        ` · updated ${new Date().toLocaleTimeString([], { hour12: false })}`
    );
    // Unchanged data is not redrawn (the reader keeps hover, focus and selection),
    // except that an unfinished run's duration grows with the clock.
    const clock = runs.runs.some(unfinished) ? Date.now() : 0;
    const key = JSON.stringify([runs, deployments, this._deploymentsError, clock]);
    if (key === this._rendered) {
      return;
    }
    this._rendered = key;
    // Redrawing must not throw the keyboard focus out of the panel.
    const focused = this._focusKey();
    this._body.replaceChildren(
      this._runList(runs, query.state as string),
      this._deploymentsSection(deployments)
    );
    this._restoreFocus(focused);
  }

  /** Who holds the scheduler lease; a warning when nobody does. */
  private _showScheduler(info: ISchedulerInfo | null): void {
    let content: (Node | string)[];
    let warn = false;
    if (info === null) {
      content = [`Scheduler: unknown (${this._schedulerError ?? 'no answer'})`];
      warn = true;
    } else if (info.holder) {
      const holder = info.holder;
      content = [
        'Scheduler: ',
        h(
          'span',
          {
            class: 'kf-SchedulerHolder',
            title: `${holder.process} pid ${holder.pid} on ${holder.host}, since ${holder.since}`
          },
          info.here
            ? 'this Jupyter server'
            : `${holder.process} (pid ${holder.pid} on ${holder.host})`
        ),
        ' · since ',
        timeCell(holder.since)
      ];
    } else {
      content = [info.warning || 'No scheduler holds the lease: deployments will not fire.'];
      warn = true;
    }
    if (info?.holder && info.warning) {
      content.push(h('div', { class: 'kf-SchedulerWarning' }, info.warning));
      warn = true;
    }
    const key = JSON.stringify([info, this._schedulerError]);
    if (key === this._schedulerKey) {
      return;
    }
    this._schedulerKey = key;
    this._scheduler.replaceChildren(...content);
    this._scheduler.classList.toggle('kf-mod-warning', warn);
    this._scheduler.setAttribute('role', warn ? 'alert' : 'note');
  }

  /** Something that finds the focused element again after a redraw. */
  private _focusKey(): string | null {
    const active = document.activeElement as HTMLElement | null;
    if (!active || !this._body.contains(active)) {
      return null;
    }
    const row = active.closest('[data-kf-run-id],[data-kf-deployment],[data-kf-actions-for]');
    if (!row) {
      return null;
    }
    const attr = ['data-kf-run-id', 'data-kf-deployment', 'data-kf-actions-for'].find(a =>
      row.hasAttribute(a)
    )!;
    const action = active.getAttribute('data-kf-action');
    const where = `[${attr}="${CSS.escape(row.getAttribute(attr)!)}"]`;
    return action ? `${where} [data-kf-action="${action}"]` : where;
  }

  private _restoreFocus(selector: string | null): void {
    if (selector) {
      (this._body.querySelector(selector) as HTMLElement | null)?.focus();
    }
  }

  private _runList(runs: IRunList, state: string): HTMLElement {
    if (runs.runs.length === 0) {
      const filtered = Object.entries(this._query()).some(([k, v]) => k !== 'limit' && v);
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
      runs.runs.map(run => this._runRow(run))
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
      this._limit += PAGE;
      void this.refresh();
    });
    return h('div', {}, list, more);
  }

  private _runRow(run: IRunSummary): HTMLLIElement {
    const tasks = run.task_runs.total;
    const kind = runKind(run);
    const display = run.display_name || run.name || run.id.slice(0, 8);
    const folded = run.folded && run.folded > 1 ? run.folded : 0;
    const counts: HTMLElement[] = [];
    if (run.failed_tasks) {
      counts.push(h('span', { class: 'kf-Count kf-mod-failed' }, `${run.failed_tasks} failed`));
    }
    if (run.crashed_tasks) {
      counts.push(h('span', { class: 'kf-Count kf-mod-crashed' }, `${run.crashed_tasks} crashed`));
    }
    const row = h(
      'li',
      {
        class: `kf-RunRow${folded ? ' kf-mod-folded' : ''}`,
        'data-kf-run-id': run.id,
        'data-kf-kind': kind,
        // Focusable and opened with Enter or Space, but no role="button": a row
        // holds real buttons (cancel, rerun), which a button may not contain.
        tabindex: '0',
        title: run.state_message || undefined
      },
      h(
        'div',
        { class: 'kf-RunRow-main' },
        badge(run.state_name, run.state_type),
        h(
          'span',
          { class: 'kf-RunRow-flow', title: run.flow_name || undefined },
          run.flow_name || '(unnamed flow)'
        ),
        folded ? h('span', { class: 'kf-Folded' }, `×${folded}`) : null,
        h('span', { class: 'kf-RunRow-duration' }, runDuration(run))
      ),
      h(
        'div',
        { class: 'kf-RunRow-meta' },
        kindBadge(kind),
        h(
          'span',
          {
            class: 'kf-RunRow-name',
            title: run.path ? `${display}\n${run.path}` : display
          },
          display
        ),
        timeCell(run.start_time || run.created),
        h('span', { class: 'kf-RunRow-tasks' }, `${tasks} task run${tasks === 1 ? '' : 's'}`),
        counts
      ),
      folded
        ? h(
            'div',
            { class: 'kf-RunRow-reason' },
            `${folded} skipped runs` + (run.reason ? `: ${run.reason}` : '')
          )
        : run.reason && run.state_name === 'Skipped'
          ? h('div', { class: 'kf-RunRow-reason' }, run.reason)
          : null,
      this._runActions(run)
    );
    const open = () => this.showRun(run.id);
    row.addEventListener('click', open);
    row.addEventListener('keydown', event => {
      if (event.target === row && (event.key === 'Enter' || event.key === ' ')) {
        event.preventDefault();
        open();
      }
    });
    return row;
  }

  /** Cancel for an unfinished run, rerun for a finished deployment run. */
  private _runActions(run: IRunSummary | IRunDetail['run']): HTMLElement | null {
    const type = (run.state_type || '').toUpperCase();
    const buttons: HTMLButtonElement[] = [];
    if (type && !FINAL.has(type) && type !== 'CANCELLING' && run.state_name !== 'Skipped') {
      buttons.push(
        actionButton('Cancel', 'cancel', () =>
          this._act('Cancel', () => request('POST', runPath(run.id, 'cancel')))
        )
      );
    }
    const isDeployment = runKind(run as IRunSummary) === 'deployment' || !!run.deployment_id;
    // A Skipped slot is history, not a failure: it gets no Rerun button.
    if (isDeployment && FINAL.has(type) && type !== 'COMPLETED' && run.state_name !== 'Skipped') {
      buttons.push(
        actionButton(
          'Rerun',
          'rerun',
          () =>
            this._act('Rerun', async () => {
              const started = await request<IRunStarted>('POST', runPath(run.id, 'rerun'));
              this._setStatus(`Started run ${started.run_id.slice(0, 8)}`);
            }),
          'Run the deployment again with the same parameters'
        )
      );
    }
    return buttons.length ? h('div', { class: 'kf-RowActions' }, buttons) : null;
  }

  private _deploymentsSection(list: IDeploymentList | null): HTMLElement {
    const section = h(
      'section',
      { class: 'kf-Deployments' },
      h('h3', { class: 'kf-SectionTitle' }, 'Deployments')
    );
    if (list === null) {
      section.appendChild(
        h(
          'div',
          { class: 'kf-Note kf-mod-error' },
          `Could not load deployments: ${this._deploymentsError ?? 'unknown error'}`
        )
      );
      return section;
    }
    if (list.note) {
      section.appendChild(h('div', { class: 'kf-Note' }, list.note));
    }
    if (list.deployments.length === 0) {
      if (!list.note) {
        section.appendChild(
          h(
            'div',
            { class: 'kf-Note' },
            'No deployments yet. Open a notebook and click Schedule in its toolbar.'
          )
        );
      }
      return section;
    }
    section.appendChild(
      h(
        'ul',
        { class: 'kf-DeploymentList', 'aria-label': 'Deployments' },
        list.deployments.map(d => this._deploymentCard(d))
      )
    );
    return section;
  }

  /**
   * One deployment as a card: name and last run, schedule and next run,
   * notebook, actions. Cards (not table columns) fit the narrow sidebar.
   */
  private _deploymentCard(d: IDeployment): HTMLLIElement {
    const last = d.last_run;
    let lastRun: Node;
    if (last) {
      const link = h(
        'a',
        {
          href: '#',
          class: 'kf-Link',
          'data-kf-run-id': last.id,
          title: `Last run: ${last.state_name || last.state_type || ''} ${formatTime(last.created)}`
        },
        badge(last.state_name, last.state_type)
      );
      link.addEventListener('click', event => {
        event.preventDefault();
        this.showRun(last.id);
      });
      lastRun = link;
    } else {
      lastRun = document.createTextNode('–');
    }
    const notebook = d.notebook.split('/').pop() || d.notebook;
    return h(
      'li',
      { class: 'kf-DeploymentCard', 'data-kf-deployment': d.name },
      h(
        'div',
        { class: 'kf-DeploymentCard-head' },
        h('span', { class: 'kf-DeploymentName', title: d.name }, d.name),
        h('span', { class: 'kf-LastRun', title: last ? undefined : 'No run yet' }, lastRun)
      ),
      h(
        'div',
        { class: 'kf-DeploymentCard-meta' },
        h('span', { class: 'kf-DeploymentSchedule' }, d.schedule),
        h(
          'span',
          { class: 'kf-NextRun' },
          d.paused
            ? h('span', { class: 'kf-Paused' }, 'paused')
            : d.problem
              ? h('span', { class: 'kf-mod-error', title: d.problem }, 'next run unknown')
              : ['next ', timeCell(d.next_run)]
        )
      ),
      h('div', { class: 'kf-DeploymentNotebook', title: d.notebook }, notebook),
      h(
        'div',
        { class: 'kf-RowActions', 'data-kf-actions-for': d.name },
        actionButton('Run now', 'run', () => this._runNow(d), `Run ${d.name} once now`),
        d.paused
          ? actionButton('Resume', 'resume', () =>
              this._act(`Resume ${d.name}`, () =>
                request('PATCH', deploymentPath(d.name), { paused: false })
              )
            )
          : actionButton('Pause', 'pause', () =>
              this._act(`Pause ${d.name}`, () =>
                request('PATCH', deploymentPath(d.name), { paused: true })
              )
            ),
        actionButton('Edit', 'edit', () => this._edit(d), `Edit ${d.name}`),
        actionButton('Delete', 'delete', () => this._delete(d), `Delete ${d.name}`, true)
      )
    );
  }

  private async _runNow(d: IDeployment): Promise<void> {
    const started = await runNowDialog(d);
    if (started) {
      this._setStatus(`Started run ${started.run_id.slice(0, 8)} of ${d.name}`);
      this._rendered = '';
      await this.refresh();
    }
  }

  private async _edit(d: IDeployment): Promise<void> {
    const saved = await scheduleDialog({ notebook: serverRelative(d.notebook), deployment: d });
    if (saved) {
      this._setStatus(`Saved ${d.name}`);
      this._rendered = '';
      await this.refresh();
    }
  }

  private async _delete(d: IDeployment): Promise<void> {
    const deleted = await confirmDialog(
      `Delete ${d.name}?`,
      `The deployment ${d.name} stops running on its schedule. Its past runs stay in the history.`,
      'Delete',
      () => request('DELETE', deploymentPath(d.name))
    );
    if (deleted) {
      this._setStatus(`Deleted ${d.name}`);
      this._rendered = '';
      await this.refresh();
    }
  }

  private async _refreshDetail(id: string): Promise<void> {
    let detail: IRunDetail;
    try {
      // The newest lines unless the reader paged back; the server cuts the page.
      const page = this._logPage;
      detail = await getJSON<IRunDetail>(runPath(id), {
        log_offset: page?.offset,
        log_limit: page?.limit ?? LOG_PAGE
      });
    } catch (error) {
      if (this._selected !== id) {
        return;
      }
      this._setStatus(`Could not load run ${id.slice(0, 8)}: ${(error as Error).message}`, true);
      if (!this._rendered) {
        this._body.replaceChildren(this._backButton());
      }
      return;
    }
    if (this._selected !== id) {
      return;
    }
    const now = new Date().toLocaleTimeString([], { hour12: false });
    this._setStatus(`Run ${detail.run.id} · updated ${now}`);
    const live = unfinished(detail.run) || detail.task_runs.some(unfinished);
    const key = JSON.stringify([detail, live ? Date.now() : 0]);
    if (key === this._rendered) {
      return;
    }
    // A form the reader is filling in is not redrawn under their fingers.
    const form = this._body.querySelector('.kf-PauseForm');
    if (form && form.contains(document.activeElement) && detail.run.pause) {
      return;
    }
    // Keep the reader's place in a long log while the run refreshes.
    const scroll = this._body.scrollTop;
    const focused = this._focusKey();
    this._rendered = key;
    this._body.replaceChildren(this._detailView(detail));
    this._body.scrollTop = scroll;
    this._restoreFocus(focused);
  }

  private _backButton(): HTMLButtonElement {
    const back = h(
      'button',
      { type: 'button', class: 'kf-Back jp-Button jp-mod-minimal' },
      '← All runs'
    );
    back.addEventListener('click', () => this.showList());
    return back;
  }

  private _parameters(run: IRunDetail['run']): Node | null {
    if (run.parameters_typed && run.parameters_typed.length) {
      return h(
        'ul',
        { class: 'kf-ParamList' },
        run.parameters_typed.map(p =>
          h('li', {}, h('code', {}, paramSignature(p.name, p.type, p.value_text)))
        )
      );
    }
    if (run.parameters && Object.keys(run.parameters as object).length) {
      return h(
        'ul',
        { class: 'kf-ParamList' },
        Object.entries(run.parameters as Record<string, unknown>).map(([k, v]) =>
          h('li', {}, h('code', {}, paramSignature(k, '', JSON.stringify(v))))
        )
      );
    }
    return null;
  }

  /** Buttons that open the executed notebook and its HTML copy. */
  private _outputs(run: IRunDetail['run']): HTMLElement | null {
    const app = this._app;
    if (!app || (!run.has_notebook && !run.has_html)) {
      return null;
    }
    // `<deployment>-<run name>`: distinct from the source notebook's own tab.
    const name = run.name || run.id.slice(0, 8);
    const title = run.deployment ? `${run.deployment}-${name}` : run.display_name || name;
    return h(
      'div',
      { class: 'kf-RowActions kf-Outputs' },
      run.has_notebook
        ? actionButton(
            'Open notebook',
            'open-notebook',
            () =>
              openRunNotebook(app, run.id, title).catch((error: Error) =>
                this._setStatus(`Could not open the notebook: ${error.message}`, true)
              ),
            'Open the executed notebook in a read-only tab'
          )
        : null,
      run.has_html
        ? actionButton(
            'Open HTML',
            'open-html',
            () =>
              openRunHtml(app, run.id, title).catch((error: Error) =>
                this._setStatus(`Could not open the HTML: ${error.message}`, true)
              ),
            'Open the executed notebook as HTML in a tab'
          )
        : null
    );
  }

  /** The form a paused flow run waits for, and its Resume button. */
  private _pauseForm(run: IRunDetail['run'], pause: IPause): HTMLElement {
    const inputs = new ParamInputs(
      pause.fields.map(f => ({
        name: f.name,
        type: f.type,
        default: f.default,
        description: f.description
      })),
      {},
      `kf-pause-${run.id.slice(0, 8)}`
    );
    const error = h('div', { class: 'kf-FormError', role: 'alert' });
    const form = h(
      'form',
      { class: 'kf-PauseForm', 'data-kf-pause-key': pause.key },
      // The state message often says the same: say it once.
      pause.description && pause.description !== run.state_message
        ? h('div', { class: 'kf-FormText' }, pause.description)
        : null,
      inputs.node,
      error,
      h(
        'button',
        {
          type: 'submit',
          class: 'jp-Button jp-mod-styled jp-mod-accept',
          'data-kf-action': 'resume-run'
        },
        'Resume'
      )
    );
    form.addEventListener('submit', event => {
      event.preventDefault();
      let input: Record<string, unknown>;
      try {
        input = inputs.values();
      } catch (e) {
        error.textContent = (e as Error).message;
        error.classList.add('kf-mod-visible');
        return;
      }
      const submit = form.querySelector('button[type="submit"]') as HTMLButtonElement;
      submit.disabled = true;
      request('POST', runPath(run.id, 'resume'), { input })
        .then(() => {
          (document.activeElement as HTMLElement | null)?.blur();
          this._rendered = '';
          return this.refresh();
        })
        .catch((e: Error) => {
          error.textContent = e.message;
          error.classList.add('kf-mod-visible');
          submit.disabled = false;
        });
    });
    return form;
  }

  private _detailView(detail: IRunDetail): HTMLElement {
    const run = detail.run;
    const facts: [string, Node | string][] = [
      ['Run', run.display_name || run.name || run.id],
      ['Id', h('code', {}, run.id)],
      ['Started', timeCell(run.start_time || run.created)],
      ['Ended', timeCell(run.end_time)],
      ['Duration', runDuration(run)],
      ['Tries', String(run.run_count ?? '')]
    ];
    if (run.deployment) {
      facts.push(['Deployment', run.deployment]);
    }
    if (run.path) {
      facts.push(['Notebook', h('span', { class: 'kf-Path', title: run.path }, run.path)]);
    }
    const parameters = this._parameters(run);
    if (parameters) {
      facts.push(['Parameters', parameters]);
    }
    if (run.tags && run.tags.length) {
      facts.push(['Tags', run.tags.join(', ')]);
    }
    if (run.host) {
      facts.push(['Process', `${run.host} pid ${run.pid ?? '?'}`]);
    }
    const header = h(
      'div',
      { class: 'kf-DetailHeader' },
      h(
        'div',
        { class: 'kf-DetailTitle' },
        badge(run.state_name, run.state_type),
        h(
          'span',
          { class: 'kf-RunRow-flow', title: run.flow_name || undefined },
          run.flow_name || '(unnamed flow)'
        ),
        kindBadge(runKind(run))
      ),
      run.state_message ? h('div', { class: 'kf-StateMessage' }, run.state_message) : null,
      this._runActions(run),
      this._outputs(run),
      run.pause ? this._pauseForm(run, run.pause) : null,
      h('dl', { class: 'kf-Facts' }, facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))
    );
    if (run.parent_flow_run_id) {
      const parent = run.parent_flow_run_id;
      const link = h('a', { href: '#', class: 'kf-Link' }, `parent run ${parent.slice(0, 8)}`);
      link.addEventListener('click', event => {
        event.preventDefault();
        this.showRun(parent);
      });
      header.appendChild(h('div', { class: 'kf-Parent' }, 'Subflow of ', link));
    }
    const names = new Map<string, string>(
      detail.task_runs.map(t => [t.id, t.name || t.task_name || t.id.slice(0, 8)])
    );
    return h(
      'div',
      { class: 'kf-RunDetail', 'data-kf-run-id': run.id },
      this._backButton(),
      header,
      h('h3', { class: 'kf-SectionTitle' }, `Task runs (${detail.task_runs.length})`),
      this._taskRunTable(detail.task_runs),
      detail.subflows.length
        ? [
            h('h3', { class: 'kf-SectionTitle' }, `Subflow runs (${detail.subflows.length})`),
            h('ul', { class: 'kf-RunList' }, detail.subflows.map(s => this._runRow(s)))
          ]
        : null,
      h('h3', { class: 'kf-SectionTitle' }, `Logs (${detail.logs_page.total})`),
      this._logPager(detail.logs_page),
      this._logs(detail.logs, names)
    );
  }

  private _taskRunTable(taskRuns: ITaskRun[]): HTMLElement {
    if (taskRuns.length === 0) {
      return h('div', { class: 'kf-Note' }, 'This flow run has no task runs.');
    }
    return h(
      'table',
      { class: 'kf-Table kf-TaskRunTable' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          // Short headers: four columns share the narrow sidebar.
          h('th', {}, 'Task run'),
          h('th', {}, 'State'),
          h('th', { title: 'Duration' }, 'Took'),
          h('th', { title: 'Tries' }, 'Try')
        )
      ),
      h(
        'tbody',
        {},
        taskRuns.map(t =>
          h(
            'tr',
            { 'data-kf-task-run-id': t.id, title: t.state_message || undefined },
            h(
              'td',
              { class: 'kf-TaskName' },
              t.name || t.task_name || t.id.slice(0, 8),
              t.state_message && t.state_type !== 'COMPLETED'
                ? h('div', { class: 'kf-StateMessage' }, t.state_message)
                : null
            ),
            h('td', {}, badge(t.state_name, t.state_type)),
            h('td', { class: 'kf-Number' }, runDuration(t)),
            h('td', { class: 'kf-Number' }, String(t.run_count ?? ''))
          )
        )
      )
    );
  }

  /**
   * Which lines are shown, and buttons to page through the rest: every line of
   * a long run is reachable, a page at a time.
   */
  private _logPager(page: ILogPage): HTMLElement | null {
    if (page.earlier === null && page.later === null) {
      return null; // everything is on this page
    }
    const first = Math.min(page.offset + 1, page.total);
    const last = Math.min(page.offset + page.limit, page.total);
    const button = (
      label: string,
      kind: string,
      target: ILogPageRequest | null,
      enabled: boolean
    ): HTMLButtonElement => {
      const b = h(
        'button',
        { class: `kf-LogPage kf-LogPage-${kind} jp-Button jp-mod-minimal` },
        label
      );
      b.disabled = !enabled;
      b.addEventListener('click', () => {
        this._logPage = target;
        this._rendered = '';
        void this.refresh();
      });
      return b;
    };
    return h(
      'div',
      { class: 'kf-LogPager' },
      h('span', { class: 'kf-LogRange' }, `lines ${first}–${last} of ${page.total}`),
      button('« Oldest', 'oldest', { offset: 0, limit: LOG_PAGE }, page.earlier !== null),
      button('‹ Earlier', 'earlier', page.earlier, page.earlier !== null),
      button('Later ›', 'later', page.later, page.later !== null),
      // null: follow the newest lines again as the run logs more.
      button('Newest »', 'newest', null, page.later !== null || this._logPage !== null)
    );
  }

  private _logs(logs: ILogLine[], names: Map<string, string>): HTMLElement {
    if (logs.length === 0) {
      return h('div', { class: 'kf-Note' }, 'Nothing was logged.');
    }
    return h(
      'div',
      { class: 'kf-Logs' },
      logs.map(line =>
        h(
          'div',
          { class: `kf-LogLine kf-level-${(line.level_name || 'info').toLowerCase()}` },
          h('span', { class: 'kf-LogTime' }, formatTime(line.timestamp)),
          h('span', { class: 'kf-LogLevel' }, line.level_name || ''),
          line.run_kind === 'task'
            ? h('span', { class: 'kf-LogRun' }, names.get(line.run_id) || line.run_id.slice(0, 8))
            : null,
          h('span', { class: 'kf-LogMessage' }, line.message || '')
        )
      )
    );
  }

  private _stateFilter: HTMLSelectElement;
  private _flowFilter: HTMLSelectElement;
  private _deploymentFilter: HTMLSelectElement;
  private _sinceFilter: HTMLInputElement;
  private _untilFilter: HTMLInputElement;
  private _status: HTMLDivElement;
  private _scheduler: HTMLDivElement;
  private _body: HTMLDivElement;
  private _selected: string | null = null;
  /** The page of the selected run's logs the reader asked for; null: the newest lines. */
  private _logPage: ILogPageRequest | null = null;
  private _limit = PAGE;
  private _loading = false;
  private _again = false;
  private _rendered = '';
  private _timer: number | null = null;
  private _deploymentsError: string | null = null;
  private _schedulerError: string | null = null;
  private _schedulerKey = '';
  /** Every flow name seen, for the flow filter. */
  private _flowNames = new Set<string>();
}
