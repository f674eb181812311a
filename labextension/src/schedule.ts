/**
 * The "Schedule this notebook" dialog (also used to edit a deployment), and
 * how a deployment's notebook and its parameters are found from the browser.
 */
import { PageConfig } from '@jupyterlab/coreutils';

import {
  type ApiError,
  deploymentPath,
  getJSON,
  type IDeployment,
  type IDeploymentInput,
  type INotebookParameters,
  type ISchedulePreview,
  request
} from './api';
import { FormBody, submitDialog } from './dialogs';
import { h } from './dom';
import { type IParamSpec, ParamInputs } from './params';

/** Milliseconds the preview waits after the last key press before asking the server. */
const PREVIEW_DELAY_MS = 350;

/** The browser's time zone (IANA name), UTC when it cannot tell. */
export function browserTimeZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

/** A deployment name from a notebook path: `reports/04 Report.ipynb` -> `04-report`. */
export function defaultName(path: string): string {
  const file = path.split('/').pop() || 'notebook';
  const stem = file.replace(/\.ipynb$/i, '');
  const name = stem
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .replace(/-+$/, '');
  return (name || 'notebook').slice(0, 100);
}

/** `Mon 5 Jan 14:30` in `timeZone` (falls back to the browser's zone). */
export function formatFireTime(iso: string, timeZone: string): string {
  const when = new Date(iso);
  const options: Intl.DateTimeFormatOptions = {
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    hour12: false,
    timeZoneName: 'short'
  };
  try {
    return when.toLocaleString([], { ...options, timeZone });
  } catch {
    return when.toLocaleString([], options);
  }
}

function field(label: string, id: string, input: HTMLElement, hint?: string): HTMLElement {
  return h(
    'div',
    { class: 'kf-Field' },
    h('label', { for: id, class: 'kf-FieldLabel' }, label),
    input,
    hint ? h('span', { class: 'kf-Hint' }, hint) : null
  );
}

function timeZones(): string[] {
  const supported = (Intl as unknown as { supportedValuesOf?: (key: string) => string[] })
    .supportedValuesOf;
  try {
    return supported ? supported('timeZone') : [];
  } catch {
    return [];
  }
}

/** What the schedule dialog starts from: a notebook to deploy, or a deployment to edit. */
export interface IScheduleTarget {
  notebook: string;
  deployment?: IDeployment;
}

/** The body of the schedule dialog. */
export class ScheduleForm extends FormBody<IDeploymentInput> {
  constructor(
    private readonly _target: IScheduleTarget,
    parameters: IParamSpec[] | null,
    parametersError: string | null
  ) {
    super();
    const d = _target.deployment;
    this._name = h('input', {
      type: 'text',
      id: 'kf-schedule-name',
      class: 'kf-Input',
      required: '',
      pattern: '[A-Za-z0-9][A-Za-z0-9_.\\-]{0,99}',
      title: 'Letters, digits, ".", "_" and "-"; up to 100 characters'
    });
    this._name.value = d ? d.name : defaultName(_target.notebook);
    this._name.disabled = d !== undefined; // a deployment is named once

    this._kind = h(
      'select',
      { id: 'kf-schedule-kind', class: 'kf-Input' },
      h('option', { value: 'interval' }, 'Every (interval)'),
      h('option', { value: 'cron' }, 'Cron expression')
    );
    this._schedule = h('input', {
      type: 'text',
      id: 'kf-schedule-value',
      class: 'kf-Input',
      required: d ? undefined : '',
      spellcheck: 'false'
    });
    const cron = d?.cron ?? null;
    const interval = d?.interval ?? null;
    if (cron) {
      this._kind.value = 'cron';
      this._schedule.value = cron;
    } else {
      this._kind.value = 'interval';
      this._schedule.value = interval !== null ? String(interval) : d ? '' : '1h';
    }
    this._timezone = h('input', {
      type: 'text',
      id: 'kf-schedule-timezone',
      class: 'kf-Input',
      list: 'kf-schedule-timezones',
      spellcheck: 'false'
    });
    // An edited deployment keeps its zone unless the reader types one.
    this._timezone.value = d ? d.timezone || '' : browserTimeZone();
    if (d && !this._timezone.value) {
      this._timezone.placeholder = 'unchanged';
    }
    this._preview = h('div', { class: 'kf-Preview', 'aria-live': 'polite' });

    this._timeout = h('input', {
      type: 'text',
      id: 'kf-schedule-timeout',
      class: 'kf-Input',
      placeholder: 'none'
    });
    this._timeout.value = d?.timeout !== undefined && d?.timeout !== null ? String(d.timeout) : '';
    this._retries = h('input', {
      type: 'number',
      id: 'kf-schedule-retries',
      class: 'kf-Input',
      min: '0',
      step: '1'
    });
    this._retries.value = String(d?.retries ?? 0);
    this._catchup = h(
      'select',
      { id: 'kf-schedule-catchup', class: 'kf-Input' },
      h('option', { value: 'skip' }, 'skip: record missed slots as Skipped'),
      h('option', { value: 'latest' }, 'latest: run the newest missed slot'),
      h('option', { value: 'all' }, 'all: run the missed slots (the newest 10)')
    );
    this._catchup.value = d?.catchup || 'skip';
    this._notify = h('input', {
      type: 'text',
      id: 'kf-schedule-notify',
      class: 'kf-Input',
      placeholder: 'none'
    });
    this._notify.value = (d?.notify || []).join(', ');

    this._params = parameters
      ? new ParamInputs(parameters, d?.parameters || {}, 'kf-schedule-param')
      : null;

    const paramsSection = h(
      'fieldset',
      { class: 'kf-Fieldset' },
      h('legend', {}, 'Parameters'),
      d && !d.parameters && parameters?.length
        ? h(
            'div',
            { class: 'kf-Hint' },
            'Shown: the notebook\u2019s defaults. Only the values you change are saved.'
          )
        : null,
      this._params
        ? parameters?.length
          ? this._params.node
          : h('div', { class: 'kf-Hint' }, 'This notebook has no parameters cell.')
        : h('div', { class: 'kf-Hint kf-mod-error' }, parametersError || '')
    );
    this.node.append(
      h('div', { class: 'kf-FormText' }, 'Notebook: ', h('code', {}, _target.notebook)),
      field('Name', 'kf-schedule-name', this._name),
      h(
        'fieldset',
        { class: 'kf-Fieldset' },
        h('legend', {}, 'Schedule'),
        field('Kind', 'kf-schedule-kind', this._kind),
        field('Schedule', 'kf-schedule-value', this._schedule),
        field('Time zone', 'kf-schedule-timezone', this._timezone),
        h(
          'datalist',
          { id: 'kf-schedule-timezones' },
          timeZones().map(zone => h('option', { value: zone }))
        ),
        this._preview
      ),
      paramsSection,
      h(
        'fieldset',
        { class: 'kf-Fieldset' },
        h('legend', {}, 'Runs'),
        field('Timeout', 'kf-schedule-timeout', this._timeout, 'seconds, or 30m / 2h'),
        field('Retries', 'kf-schedule-retries', this._retries),
        field('Catch-up', 'kf-schedule-catchup', this._catchup),
        field('Notify', 'kf-schedule-notify', this._notify, 'comma-separated targets')
      ),
      this.errorLine
    );
    this._updateHint();
    const changed = () => {
      this._updateHint();
      this._schedulePreview();
    };
    this._kind.addEventListener('change', changed);
    this._schedule.addEventListener('input', changed);
    this._timezone.addEventListener('input', changed);
    this._initial = d ? this._read() : {};
    if (d && !this._schedule.value) {
      // The list of deployments tells the schedule only as text: keep it unless replaced.
      this._schedule.placeholder = `unchanged: ${d.schedule}`;
      this._preview.replaceChildren(
        h('div', { class: 'kf-PreviewText' }, d.schedule),
        h('div', { class: 'kf-Hint' }, 'Type a new schedule to replace it.')
      );
    } else {
      this._schedulePreview(0);
    }
  }

  getValue(): IDeploymentInput {
    const full = this._read();
    if (!this._target.deployment) {
      return full;
    }
    // An edit sends only what the reader changed (a partial PATCH): the list of
    // deployments does not carry every setting, so untouched fields stay as stored.
    const changed: IDeploymentInput = {};
    const initial = this._initial as Record<string, unknown>;
    for (const [key, value] of Object.entries(full)) {
      if (JSON.stringify(value) !== JSON.stringify(initial[key])) {
        (changed as Record<string, unknown>)[key] = value;
      }
    }
    if (changed.cron !== undefined || changed.interval !== undefined) {
      // A new schedule replaces the old one whole, whichever kind it was.
      changed.cron = full.cron;
      changed.interval = full.interval;
      if (full.timezone) {
        changed.timezone = full.timezone;
      }
    }
    if (this._params) {
      const parameters = this._params.values(true);
      if (Object.keys(parameters).length) {
        changed.parameters = { ...(this._target.deployment.parameters || {}), ...parameters };
      } else {
        delete changed.parameters;
      }
    }
    return changed;
  }

  /** Everything the form holds, as the body of `POST deployments`. */
  private _read(): IDeploymentInput {
    const value: IDeploymentInput = {};
    const editing = this._target.deployment !== undefined;
    if (!editing) {
      value.notebook = this._target.notebook;
      value.name = this._name.value.trim();
      if (!value.name) {
        throw new Error('Give the deployment a name.');
      }
    }
    const schedule = this._schedule.value.trim();
    if (!schedule && !editing) {
      throw new Error('Give a schedule: an interval such as 10m, or a cron expression.');
    }
    if (schedule && this._kind.value === 'cron') {
      value.cron = schedule;
    } else if (schedule) {
      value.interval = /^\d+(\.\d+)?$/.test(schedule) ? Number(schedule) : schedule;
    }
    const timezone = this._timezone.value.trim();
    if (timezone) {
      value.timezone = timezone;
    }
    if (this._params && !editing) {
      // A new deployment stores only what differs from the notebook's defaults.
      const parameters = this._params.values(true);
      if (Object.keys(parameters).length) {
        value.parameters = parameters;
      }
    }
    const timeout = this._timeout.value.trim();
    if (timeout) {
      value.timeout = /^\d+(\.\d+)?$/.test(timeout) ? Number(timeout) : timeout;
    }
    const retries = this._retries.value.trim();
    if (retries) {
      const n = Number(retries);
      if (!Number.isInteger(n) || n < 0) {
        throw new Error('Retries must be a whole number, 0 or more.');
      }
      value.retries = n;
    }
    value.catchup = this._catchup.value;
    value.notify = this._notify.value
      .split(',')
      .map(s => s.trim())
      .filter(s => s);
    return value;
  }

  dispose(): void {
    window.clearTimeout(this._previewTimer);
    super.dispose();
  }

  private _updateHint(): void {
    if (this._target.deployment && !this._schedule.value) {
      return; // keeps "unchanged: ..."
    }
    this._schedule.placeholder = this._kind.value === 'cron' ? '0 6 * * 1-5' : '10m, 1h or 3600';
  }

  /** Ask for the preview once the reader stops typing. */
  private _schedulePreview(delay = PREVIEW_DELAY_MS): void {
    window.clearTimeout(this._previewTimer);
    this._previewTimer = window.setTimeout(() => void this._fetchPreview(), delay);
  }

  private async _fetchPreview(): Promise<void> {
    const schedule = this._schedule.value.trim();
    const timezone = this._timezone.value.trim() || browserTimeZone();
    const ask = ++this._previewAsk;
    if (!schedule) {
      this._showPreview(
        null,
        this._target.deployment
          ? `Unchanged: ${this._target.deployment.schedule}`
          : 'Give a schedule to see when it fires.'
      );
      return;
    }
    const body: Record<string, unknown> = { timezone, count: 5 };
    if (this._kind.value === 'cron') {
      body.cron = schedule;
    } else {
      body.interval = /^\d+(\.\d+)?$/.test(schedule) ? Number(schedule) : schedule;
    }
    try {
      const preview = await request<ISchedulePreview>('POST', 'schedule/preview', body);
      if (ask === this._previewAsk && !this.isDisposed) {
        this._showPreview(preview, null);
      }
    } catch (error) {
      if (ask === this._previewAsk && !this.isDisposed) {
        this._showPreview(null, (error as Error).message, (error as ApiError).status === 400);
      }
    }
  }

  private _showPreview(preview: ISchedulePreview | null, error: string | null, bad = false): void {
    // A schedule the server rejects marks its input, which disables Create.
    this._schedule.classList.toggle('jp-mod-error', bad);
    this._schedule.setAttribute('aria-invalid', bad ? 'true' : 'false');
    if (preview === null) {
      this._preview.replaceChildren(h('div', { class: 'kf-PreviewError' }, error || ''));
    } else {
      this._preview.replaceChildren(
        h('div', { class: 'kf-PreviewText' }, preview.description),
        h(
          'ol',
          { class: 'kf-PreviewTimes', 'aria-label': 'Next fire times' },
          preview.next.map(iso =>
            h('li', {}, h('time', { datetime: iso }, formatFireTime(iso, preview.timezone)))
          )
        )
      );
    }
    // The Dialog re-checks its inputs on input events only.
    this.node.dispatchEvent(new Event('input', { bubbles: true }));
  }

  private _name: HTMLInputElement;
  private _kind: HTMLSelectElement;
  private _schedule: HTMLInputElement;
  private _timezone: HTMLInputElement;
  private _preview: HTMLDivElement;
  private _timeout: HTMLInputElement;
  private _retries: HTMLInputElement;
  private _catchup: HTMLSelectElement;
  private _notify: HTMLInputElement;
  private _params: ParamInputs | null;
  /** The form's content when it opened (an edit sends only what changed). */
  private _initial: IDeploymentInput = {};
  private _previewTimer = 0;
  private _previewAsk = 0;
}

/**
 * A deployment's notebook as a path under the server root when it lies there
 * (deployments made from a terminal store absolute paths).
 */
export function serverRelative(path: string): string {
  const root = (PageConfig.getOption('serverRoot') || '').replace(/\/+$/, '');
  if (root && path.startsWith(`${root}/`)) {
    return path.slice(root.length + 1);
  }
  return path;
}

/** The notebook's parameters, or null and why they could not be read. */
export async function readParameters(
  notebook: string
): Promise<[IParamSpec[] | null, string | null]> {
  try {
    const answer = await getJSON<INotebookParameters>('notebooks/parameters', {
      path: serverRelative(notebook)
    });
    return [answer.parameters, null];
  } catch (error) {
    return [null, `Could not read the notebook's parameters: ${(error as Error).message}`];
  }
}

/**
 * Open the schedule dialog: create a deployment of `target.notebook`, or edit
 * `target.deployment`. Resolves with the stored deployment, or null when cancelled.
 */
export async function scheduleDialog(target: IScheduleTarget): Promise<IDeployment | null> {
  const [parameters, error] = await readParameters(target.notebook);
  const body = new ScheduleForm(target, parameters, error);
  const editing = target.deployment;
  return submitDialog<IDeploymentInput, IDeployment>({
    title: editing ? `Edit deployment ${editing.name}` : 'Schedule this notebook',
    body,
    accept: editing ? 'Save' : 'Create',
    focus: editing ? '#kf-schedule-value' : '#kf-schedule-name',
    submit: value =>
      editing
        ? request<IDeployment>('PATCH', deploymentPath(editing.name), value)
        : request<IDeployment>('POST', 'deployments', value)
  });
}
