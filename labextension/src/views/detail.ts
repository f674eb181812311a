/**
 * The run detail view: one flow run's facts, actions and outputs, the form a
 * paused run waits for, its task runs and subflows, and its logs a page at a
 * time.
 */
import type { JupyterFrontEnd } from '@jupyterlab/application';

import {
  getJSON,
  type ILogLine,
  type ILogPage,
  type ILogPageRequest,
  type IPause,
  type IRunDetail,
  type ITaskRun,
  request,
  runPath
} from '../api';
import { h } from '../dom';
import { formatTime, runDuration } from '../format';
import { ParamInputs, paramSignature } from '../params';
import { LOG_PAGE, type PanelStore } from '../store';
import { openRunHtml, openRunNotebook } from '../viewer';
import {
  actionButton,
  badge,
  focusKey,
  kindBadge,
  restoreFocus,
  runKind,
  timeCell,
  unfinished
} from './common';
import { runActions, runRow } from './runRow';

type Run = IRunDetail['run'];

/** Fetches and draws the selected run. */
export class RunDetailView {
  constructor(
    private readonly _store: PanelStore,
    private readonly _body: HTMLElement,
    private readonly _app: JupyterFrontEnd | null
  ) {}

  /** Fetch run `id` (the page of logs the reader is on) and draw it if it changed. */
  async load(id: string): Promise<void> {
    const store = this._store;
    const body = this._body;
    let detail: IRunDetail;
    try {
      // The newest lines unless the reader paged back; the server cuts the page.
      const page = store.logPage;
      detail = await getJSON<IRunDetail>(runPath(id), {
        log_offset: page?.offset,
        log_limit: page?.limit ?? LOG_PAGE
      });
    } catch (error) {
      if (store.selected !== id) {
        return;
      }
      store.setStatus(`Could not load run ${id.slice(0, 8)}: ${(error as Error).message}`, true);
      if (!store.rendered) {
        body.replaceChildren(this._backButton());
      }
      return;
    }
    if (store.selected !== id) {
      return;
    }
    const now = new Date().toLocaleTimeString([], { hour12: false });
    store.setStatus(`Run ${detail.run.id} · updated ${now}`);
    const live = unfinished(detail.run) || detail.task_runs.some(unfinished);
    const key = JSON.stringify([detail, live ? Date.now() : 0]);
    if (key === store.rendered) {
      return;
    }
    // A form the reader is filling in is not redrawn under their fingers.
    const form = body.querySelector('.kf-PauseForm');
    if (form?.contains(document.activeElement) && detail.run.pause) {
      return;
    }
    // Keep the reader's place in a long log while the run refreshes.
    const scroll = body.scrollTop;
    const focused = focusKey(body);
    store.rendered = key;
    body.replaceChildren(this._detailView(detail));
    body.scrollTop = scroll;
    restoreFocus(body, focused);
  }

  private _backButton(): HTMLButtonElement {
    const back = h(
      'button',
      { type: 'button', class: 'kf-Back jp-Button jp-mod-minimal' },
      '← All runs'
    );
    back.addEventListener('click', () => this._store.showList());
    return back;
  }

  private _parameters(run: Run): Node | null {
    if (run.parameters_typed?.length) {
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
  private _outputs(run: Run): HTMLElement | null {
    const app = this._app;
    if (!app || (!run.has_notebook && !run.has_html)) {
      return null;
    }
    const store = this._store;
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
                store.setStatus(`Could not open the notebook: ${error.message}`, true)
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
                store.setStatus(`Could not open the HTML: ${error.message}`, true)
              ),
            'Open the executed notebook as HTML in a tab'
          )
        : null
    );
  }

  /** The form a paused flow run waits for, and its Resume button. */
  private _pauseForm(run: Run, pause: IPause): HTMLElement {
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
    const submit = h(
      'button',
      {
        type: 'submit',
        class: 'jp-Button jp-mod-styled jp-mod-accept',
        'data-kf-action': 'resume-run'
      },
      'Resume'
    );
    const form = h(
      'form',
      { class: 'kf-PauseForm', 'data-kf-pause-key': pause.key },
      // The state message often says the same: say it once.
      pause.description && pause.description !== run.state_message
        ? h('div', { class: 'kf-FormText' }, pause.description)
        : null,
      inputs.node,
      error,
      submit
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
      submit.disabled = true;
      request('POST', runPath(run.id, 'resume'), { input })
        .then(() => {
          (document.activeElement as HTMLElement | null)?.blur();
          return this._store.redraw();
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
    if (run.tags?.length) {
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
      runActions(this._store, run),
      this._outputs(run),
      run.pause ? this._pauseForm(run, run.pause) : null,
      h(
        'dl',
        { class: 'kf-Facts' },
        facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])
      )
    );
    if (run.parent_flow_run_id) {
      const parent = run.parent_flow_run_id;
      const link = h('a', { href: '#', class: 'kf-Link' }, `parent run ${parent.slice(0, 8)}`);
      link.addEventListener('click', event => {
        event.preventDefault();
        this._store.showRun(parent);
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
      taskRunTable(detail.task_runs),
      detail.subflows.length
        ? [
            h('h3', { class: 'kf-SectionTitle' }, `Subflow runs (${detail.subflows.length})`),
            h(
              'ul',
              { class: 'kf-RunList' },
              detail.subflows.map(s => runRow(this._store, s))
            )
          ]
        : null,
      h('h3', { class: 'kf-SectionTitle' }, `Logs (${detail.logs_page.total})`),
      this._logPager(detail.logs_page),
      logLines(detail.logs, names)
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
    const store = this._store;
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
        store.logPage = target;
        void store.redraw();
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
      button('Newest »', 'newest', null, page.later !== null || store.logPage !== null)
    );
  }
}

/** A run's task runs as a table: name (and message), state, duration, tries. */
function taskRunTable(taskRuns: ITaskRun[]): HTMLElement {
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

/** Log lines; a task run's line names the task run (`names`: id to name). */
function logLines(logs: ILogLine[], names: Map<string, string>): HTMLElement {
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
