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
  run: IRunSummary & { parameters: unknown; host: string | null; pid: number | null };
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
}

/** `GET /kernelflow/api/deployments`: `note` explains an empty list the store cannot fill. */
export interface IDeploymentList {
  deployments: IDeployment[];
  note: string | null;
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

/**
 * GET `path` under `kernelflow/api/` and parse the JSON answer.
 *
 * @param path - e.g. `runs` or `runs/<id>`.
 * @param query - query parameters; empty values are left out.
 */
export async function getJSON<T>(
  path: string,
  query: Record<string, string | number | undefined> = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== '') {
      params.set(key, String(value));
    }
  }
  const search = params.toString();
  const url =
    URLExt.join(settings.baseUrl, 'kernelflow', 'api', path) +
    (search ? `?${search}` : '');
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, {}, settings);
  } catch (error) {
    throw new ApiError(0, `The Jupyter server did not answer: ${error}`);
  }
  const text = await response.text();
  let body: any = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const message =
      (body && (body.message || body.reason)) ||
      `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message);
  }
  return body as T;
}
