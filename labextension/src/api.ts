/**
 * The kernelflow server extension's REST API, typed.
 *
 * Every call goes through `ServerConnection.makeRequest`, so it carries the
 * server's token and XSRF cookie like every other JupyterLab request.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** One flow run as listed: a row of the store's `flow_runs` plus a task run summary. */
export interface IRunSummary {
  id: string;
  name: string | null;
  flow_name: string | null;
  state_type: string | null;
  state_name: string | null;
  state_message: string | null;
  created: string | null;
  start_time: string | null;
  end_time: string | null;
  duration_s: number | null;
  run_count: number | null;
  parent_flow_run_id: string | null;
  deployment_id: string | null;
  tags: string[] | null;
  task_runs: { total: number; by_state: Record<string, number> };
  /** How to name the run: a session run's notebook file name, else the run name. */
  display_name?: string | null;
  /** The notebook the run comes from, or null. */
  path?: string | null;
  /** `flow`, `subflow` (a real subflow with a parent flow run), `session` or `deployment`. */
  kind?: 'flow' | 'subflow' | 'session' | 'deployment' | null;
  /** The deployment's name for a deployment run, else null. */
  deployment?: string | null;
  failed_tasks?: number;
  crashed_tasks?: number;
  /** Consecutive Skipped runs of one deployment folded into this row: how many. */
  folded?: number;
  /** Why the folded runs were skipped. */
  reason?: string | null;
}

/** `GET /kernelflow/api/runs`. */
export interface IRunList {
  runs: IRunSummary[];
  offset: number;
  limit: number;
  has_more: boolean;
}

/** A task run of a flow run. */
export interface ITaskRun {
  id: string;
  name: string | null;
  task_name: string | null;
  state_type: string | null;
  state_name: string | null;
  state_message: string | null;
  start_time: string | null;
  end_time: string | null;
  duration_s: number | null;
  run_count: number | null;
  cached: boolean | null;
}

/** A log line of a flow run or one of its task runs. */
export interface ILogLine {
  run_id: string;
  run_kind: string;
  level_name: string | null;
  logger: string | null;
  message: string | null;
  timestamp: string | null;
}

/** The parameters that ask for a page of a run's logs. */
export interface ILogPageRequest {
  offset: number;
  limit: number;
}

/**
 * Where a page of a run's logs lies: lines are numbered from 0 (the oldest);
 * `earlier` and `later` ask for the neighbouring pages (null at either end).
 */
export interface ILogPage extends ILogPageRequest {
  total: number;
  earlier: ILogPageRequest | null;
  later: ILogPageRequest | null;
}

/** `GET /kernelflow/api/runs/<id>/logs?offset=&limit=`: one page of a run's logs. */
export interface IRunLogs extends ILogPage {
  run_id: string;
  logs: ILogLine[];
}

/** `GET /kernelflow/api/runs/<id>?log_offset=&log_limit=` (default: the newest log page). */
export interface IRunDetail {
  run: IRunSummary & {
    parameters: unknown;
    host: string | null;
    pid: number | null;
    parameters_typed?: ITypedValue[];
    pause?: IPause | null;
    has_notebook?: boolean;
    has_html?: boolean;
  };
  task_runs: ITaskRun[];
  subflows: IRunSummary[];
  logs: ILogLine[];
  logs_page: ILogPage;
  /** Lines before this page (`logs_page.offset`). */
  logs_omitted: number;
}

/** One deployment as listed. */
export interface IDeployment {
  id: string;
  name: string;
  notebook: string;
  schedule: string;
  paused: boolean;
  next_run: string | null;
  last_run: {
    id: string;
    state_name: string | null;
    state_type: string | null;
    created: string | null;
  } | null;
  /** Why `next_run` is unknown (a schedule this version cannot read), or null. */
  problem: string | null;
  /** The settings, when the server sends them: they fill the edit dialog. */
  cron?: string | null;
  interval?: number | string | null;
  timezone?: string | null;
  parameters?: Record<string, unknown> | null;
  timeout?: number | string | null;
  retries?: number | null;
  catchup?: string | null;
  notify?: string[] | null;
}

/** `GET /kernelflow/api/deployments`: `note` explains an empty list the store cannot fill. */
export interface IDeploymentList {
  deployments: IDeployment[];
  note: string | null;
}

/** A parameter of a run as the panel shows it: `n: int = 10`. */
export interface ITypedValue {
  name: string;
  type: string;
  value_text: string;
}

/** A field of the form a paused flow run waits for. */
export interface IPauseField {
  name: string;
  type: string;
  default: unknown;
  description: string | null;
}

/** A flow run paused until someone answers its form. */
export interface IPause {
  key: string;
  description: string | null;
  fields: IPauseField[];
}

/** `GET scheduler`: which process holds the scheduler lease. */
export interface ISchedulerInfo {
  here: boolean;
  holder: { pid: number; host: string; process: string; since: string } | null;
  warning: string | null;
}

/** `POST schedule/preview`. */
export interface ISchedulePreview {
  description: string;
  timezone: string;
  next: string[];
}

/** A parameter of a notebook's `parameters` cell. */
export interface INotebookParameter {
  name: string;
  type: string;
  default: unknown;
  default_text: string;
}

/** `GET notebooks/parameters?path=`. */
export interface INotebookParameters {
  path: string;
  parameters: INotebookParameter[];
}

/** The body of `POST deployments` and (partial) `PATCH deployments/<name>`. */
export interface IDeploymentInput {
  notebook?: string;
  name?: string;
  cron?: string;
  interval?: string | number;
  timezone?: string;
  parameters?: Record<string, unknown>;
  timeout?: number | string;
  retries?: number;
  retry_delay?: number | string;
  catchup?: string;
  notify?: string[];
  paused?: boolean;
}

/** `POST deployments/<name>/runs` and `POST runs/<id>/rerun`. */
export interface IRunStarted {
  run_id: string;
  name?: string;
  state?: string;
}

/** An answer other than 2xx, with the server's one-line message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
  }
}

type Query = Record<string, string | number | undefined | null>;

/** The URL of `path` under `kernelflow/api/`, with the non-empty query values. */
export function apiUrl(path: string, query: Query = {}): string {
  const settings = ServerConnection.makeSettings();
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') {
      params.set(key, String(value));
    }
  }
  const search = params.toString();
  return URLExt.join(settings.baseUrl, 'kernelflow', 'api', path) + (search ? `?${search}` : '');
}

/**
 * Send `method` to `path` under `kernelflow/api/` and parse the JSON answer.
 *
 * @param method - GET, POST, PATCH or DELETE.
 * @param path - e.g. `runs` or `deployments/<name>`.
 * @param body - sent as JSON when given.
 * @param query - query parameters; empty values are left out.
 * @throws ApiError with the server's one-line message for any answer but 2xx.
 */
export async function request<T>(
  method: string,
  path: string,
  body?: unknown,
  query: Query = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { 'Content-Type': 'application/json' };
  }
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(apiUrl(path, query), init, settings);
  } catch (error) {
    throw new ApiError(0, `The Jupyter server did not answer: ${error}`);
  }
  const text = await response.text();
  // Whatever JSON the server sent: the caller's `T` on success, `{message}` on error.
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    const problem = parsed as { message?: unknown; reason?: unknown } | null;
    const message =
      (problem && (problem.message || problem.reason)) ||
      `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, String(message).split('\n')[0]);
  }
  return parsed as T;
}

/**
 * GET `path` under `kernelflow/api/` and parse the JSON answer.
 *
 * @param path - e.g. `runs` or `runs/<id>`.
 * @param query - query parameters; empty values are left out.
 */
export function getJSON<T>(path: string, query: Query = {}): Promise<T> {
  return request<T>('GET', path, undefined, query);
}

/** `runs/<id>` with the id escaped, plus an optional action (`cancel`, `notebook`...). */
export function runPath(id: string, action = ''): string {
  return `runs/${encodeURIComponent(id)}${action ? `/${action}` : ''}`;
}

/** `deployments/<name>` with the name escaped, plus an optional action (`runs`). */
export function deploymentPath(name: string, action = ''): string {
  return `deployments/${encodeURIComponent(name)}${action ? `/${action}` : ''}`;
}
