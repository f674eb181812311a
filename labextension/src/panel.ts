/**
 * The kernelflow runs panel: recent flow runs, one run's task runs and logs,
 * and the notebook deployments, read from the server extension's REST API.
 *
 * It refreshes on demand (the refresh button) and every few seconds while it
 * is visible; a hidden panel (sidebar collapsed, browser tab in the
 * background) asks the server nothing.
 */
import { refreshIcon } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import {
  ApiError,
  getJSON,
  IDeploymentList,
  ILogLine,
  ILogPage,
  ILogPageRequest,
  IRunDetail,
  IRunList,
  IRunSummary,
  ITaskRun
} from './api';
import { h, stateBadge } from './dom';
import {
  formatTime,
  relativeTime,
  runDuration,
  STATE_FILTERS,
  stateClass
} from './format';

/** Milliseconds between refreshes while the panel is visible. */
export const REFRESH_MS = 5000;

/** Runs fetched per page ("Load more" asks for one more page). */
const PAGE = 50;

/** Log lines per page of a run's logs. */
export const LOG_PAGE = 200;

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

/** The left-sidebar widget. */
export class RunsPanel extends Widget {
  constructor() {
    super();
    this.id = 'kernelflow-runs';
    this.addClass('kf-RunsPanel');
    this.title.caption = 'kernelflow runs';

    this._stateFilter = h(
      'select',
      { class: 'kf-StateFilter', title: 'Show only runs in this state' },
      STATE_FILTERS.map(f => h('option', { value: f.value }, f.label))
    );
    this._stateFilter.addEventListener('change', () => {
      this._limit = PAGE;
      this._selected = null;
      void this.refresh();
    });
    const refreshButton = h('button', {
      class: 'kf-RefreshButton jp-Button jp-mod-minimal',
      title: 'Refresh',
      'aria-label': 'Refresh'
    });
    refreshIcon.element({ container: refreshButton, height: '16px', width: '16px' });
    refreshButton.addEventListener('click', () => void this.refresh());

    this._status = h('div', { class: 'kf-Status', role: 'status' });
    this._body = h('div', { class: 'kf-Body' });
    this.node.appendChild(
      h(
        'div',
        { class: 'kf-Toolbar' },
        h('span', { class: 'kf-Title' }, 'Flow runs'),
        this._stateFilter,
        refreshButton
      )
    );
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

  private async _refreshList(): Promise<void> {
    const state = this._stateFilter.value;
    let runs: IRunList;
    let deployments: IDeploymentList | null = null;
    try {
      [runs, deployments] = await Promise.all([
        getJSON<IRunList>('runs', { state, limit: this._limit }),
        getJSON<IDeploymentList>('deployments').catch((error: ApiError) => {
          this._deploymentsError = error.message;
          return null;
        })
      ]);
    } catch (error) {
      this._setStatus(`Could not load runs: ${(error as Error).message}`, true);
      return;
    }
    if (this._selected !== null || state !== this._stateFilter.value) {
      return; // the user moved on while we waited
    }
    if (deployments !== null) {
      this._deploymentsError = null;
    }
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
    this._body.replaceChildren(
      this._runList(runs, state),
      this._deploymentsSection(deployments)
    );
  }

  private _runList(runs: IRunList, state: string): HTMLElement {
    if (runs.runs.length === 0) {
      return h(
        'div',
        { class: 'kf-Placeholder kf-RunList-empty' },
        state
          ? `No flow runs in state ${state}.`
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
    const more = h('button', { class: 'kf-More jp-Button jp-mod-styled' }, 'Load more');
    more.addEventListener('click', () => {
      this._limit += PAGE;
      void this.refresh();
    });
    return h('div', {}, list, more);
  }

  private _runRow(run: IRunSummary): HTMLLIElement {
    const tasks = run.task_runs.total;
    const row = h(
      'li',
      {
        class: 'kf-RunRow',
        'data-kf-run-id': run.id,
        tabindex: '0',
        title: run.state_message || undefined
      },
      h(
        'div',
        { class: 'kf-RunRow-main' },
        badge(run.state_name, run.state_type),
        h('span', { class: 'kf-RunRow-flow' }, run.flow_name || '(unnamed flow)'),
        h('span', { class: 'kf-RunRow-duration' }, runDuration(run))
      ),
      h(
        'div',
        { class: 'kf-RunRow-meta' },
        run.parent_flow_run_id ? h('span', { class: 'kf-Subflow' }, 'subflow') : null,
        h('span', { class: 'kf-RunRow-name' }, run.name || run.id.slice(0, 8)),
        timeCell(run.start_time || run.created),
        h('span', {}, `${tasks} task run${tasks === 1 ? '' : 's'}`)
      )
    );
    const open = () => this.showRun(run.id);
    row.addEventListener('click', open);
    row.addEventListener('keydown', event => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        open();
      }
    });
    return row;
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
            'No deployments yet. Create one with `kernelflow deploy NOTEBOOK --name NAME`.'
          )
        );
      }
      return section;
    }
    section.appendChild(
      h(
        'table',
        { class: 'kf-Table kf-DeploymentTable' },
        h(
          'thead',
          {},
          h('tr', {}, ['Name', 'Schedule', 'Next run', 'Last run'].map(c => h('th', {}, c)))
        ),
        h(
          'tbody',
          {},
          list.deployments.map(d => {
            const last = d.last_run;
            const lastCell = h('td', {});
            if (last) {
              const link = h(
                'a',
                { href: '#', class: 'kf-Link', 'data-kf-run-id': last.id },
                badge(last.state_name, last.state_type)
              );
              link.addEventListener('click', event => {
                event.preventDefault();
                this.showRun(last.id);
              });
              lastCell.appendChild(link);
            } else {
              lastCell.textContent = '–';
            }
            return h(
              'tr',
              { 'data-kf-deployment': d.name, title: d.notebook },
              h('td', { class: 'kf-DeploymentName' }, d.name),
              h('td', {}, d.schedule),
              h(
                'td',
                {},
                d.paused
                  ? h('span', { class: 'kf-Paused' }, 'paused')
                  : d.problem
                    ? h('span', { class: 'kf-mod-error', title: d.problem }, 'unknown')
                    : timeCell(d.next_run)
              ),
              lastCell
            );
          })
        )
      )
    );
    return section;
  }

  private async _refreshDetail(id: string): Promise<void> {
    let detail: IRunDetail;
    try {
      // The newest lines unless the reader paged back; the server cuts the page.
      const page = this._logPage;
      detail = await getJSON<IRunDetail>(`runs/${encodeURIComponent(id)}`, {
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
    this._setStatus(`Run ${detail.run.id} · updated ${new Date().toLocaleTimeString([], { hour12: false })}`);
    const live = unfinished(detail.run) || detail.task_runs.some(unfinished);
    const key = JSON.stringify([detail, live ? Date.now() : 0]);
    if (key === this._rendered) {
      return;
    }
    // Keep the reader's place in a long log while the run refreshes.
    const scroll = this._body.scrollTop;
    this._rendered = key;
    this._body.replaceChildren(this._detailView(detail));
    this._body.scrollTop = scroll;
  }

  private _backButton(): HTMLButtonElement {
    const back = h('button', { class: 'kf-Back jp-Button jp-mod-minimal' }, '← All runs');
    back.addEventListener('click', () => this.showList());
    return back;
  }

  private _detailView(detail: IRunDetail): HTMLElement {
    const run = detail.run;
    const facts: [string, Node | string][] = [
      ['Run', run.name || run.id],
      ['Id', h('code', {}, run.id)],
      ['Started', timeCell(run.start_time || run.created)],
      ['Ended', timeCell(run.end_time)],
      ['Duration', runDuration(run)],
      ['Tries', String(run.run_count ?? '')]
    ];
    if (run.parameters && Object.keys(run.parameters as object).length) {
      facts.push(['Parameters', h('code', {}, JSON.stringify(run.parameters))]);
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
        h('span', { class: 'kf-RunRow-flow' }, run.flow_name || '(unnamed flow)')
      ),
      run.state_message ? h('div', { class: 'kf-StateMessage' }, run.state_message) : null,
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
        h('tr', {}, ['Task run', 'State', 'Duration', 'Tries'].map(c => h('th', {}, c)))
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
  private _status: HTMLDivElement;
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
}
