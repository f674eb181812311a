/**
 * The deployments view: a card per notebook deployment (its schedule, next
 * and last run, and the run now / pause / resume / edit / delete actions),
 * and the scheduler line that says who fires them.
 */
import {
  type ApiError,
  deploymentPath,
  getJSON,
  type IDeployment,
  type IDeploymentList,
  type ISchedulerInfo,
  request
} from '../api';
import { confirmDialog } from '../dialogs';
import { h } from '../dom';
import { formatTime } from '../format';
import { runNowDialog } from '../runNow';
import { scheduleDialog, serverRelative } from '../schedule';
import type { PanelStore } from '../store';
import { actionButton, badge, timeCell } from './common';

/** Who holds the scheduler lease; a warning when nobody does. */
export class SchedulerLine {
  /** The line's element. */
  readonly node = h('div', { class: 'kf-Scheduler' });

  /** Ask the server who schedules; null (and the reason kept) when it cannot say. */
  async fetch(): Promise<ISchedulerInfo | null> {
    try {
      const info = await getJSON<ISchedulerInfo>('scheduler');
      this._error = null;
      return info;
    } catch (error) {
      this._error = (error as ApiError).message;
      return null;
    }
  }

  /** Draw `info` (from `fetch`), unless the line already shows it. */
  show(info: ISchedulerInfo | null): void {
    let content: (Node | string)[];
    let warn = false;
    if (info === null) {
      content = [`Scheduler: unknown (${this._error ?? 'no answer'})`];
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
    const key = JSON.stringify([info, this._error]);
    if (key === this._key) {
      return;
    }
    this._key = key;
    this.node.replaceChildren(...content);
    this.node.classList.toggle('kf-mod-warning', warn);
    this.node.setAttribute('role', warn ? 'alert' : 'note');
  }

  private _error: string | null = null;
  private _key = '';
}

/** The deployments section under the run list. */
export class DeploymentsView {
  constructor(private readonly _store: PanelStore) {}

  /** Why the last fetch failed; null when it did not. */
  get error(): string | null {
    return this._error;
  }

  /** Fetch the deployments; null (and the reason kept) when the server cannot list them. */
  async fetch(): Promise<IDeploymentList | null> {
    try {
      const list = await getJSON<IDeploymentList>('deployments');
      this._error = null;
      return list;
    } catch (error) {
      this._error = (error as ApiError).message;
      return null;
    }
  }

  /** The section for `list` (from `fetch`). */
  render(list: IDeploymentList | null): HTMLElement {
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
          `Could not load deployments: ${this._error ?? 'unknown error'}`
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
        list.deployments.map(d => this._card(d))
      )
    );
    return section;
  }

  /**
   * One deployment as a card: name and last run, schedule and next run,
   * notebook, actions. Cards (not table columns) fit the narrow sidebar.
   */
  private _card(d: IDeployment): HTMLLIElement {
    const store = this._store;
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
        store.showRun(last.id);
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
              store.act(`Resume ${d.name}`, () =>
                request('PATCH', deploymentPath(d.name), { paused: false })
              )
            )
          : actionButton('Pause', 'pause', () =>
              store.act(`Pause ${d.name}`, () =>
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
      this._store.setStatus(`Started run ${started.run_id.slice(0, 8)} of ${d.name}`);
      await this._store.redraw();
    }
  }

  private async _edit(d: IDeployment): Promise<void> {
    const saved = await scheduleDialog({ notebook: serverRelative(d.notebook), deployment: d });
    if (saved) {
      this._store.setStatus(`Saved ${d.name}`);
      await this._store.redraw();
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
      this._store.setStatus(`Deleted ${d.name}`);
      await this._store.redraw();
    }
  }

  private _error: string | null = null;
}
