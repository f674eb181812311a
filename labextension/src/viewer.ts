/**
 * Executed notebooks of deployment runs, opened inside JupyterLab.
 *
 * The notebook: a read-only Contents drive, `kernelflow-run:<run id>/<name>.ipynb`,
 * backed by `GET runs/<id>/notebook`, so it opens in JupyterLab's own
 * notebook editor although the store lies outside the server root.
 * The HTML copy: an IFrame main-area tab on `GET runs/<id>/html`, sandboxed
 * (no scripts, its own origin) as the server's CSP header also asks.
 */
import type { JupyterFrontEnd } from '@jupyterlab/application';
import { MainAreaWidget } from '@jupyterlab/apputils';
import { type Contents, ServerConnection } from '@jupyterlab/services';
import { IFrame } from '@jupyterlab/ui-components';
import { type ISignal, Signal } from '@lumino/signaling';

import { apiUrl, getJSON, runPath } from './api';

/** The drive's name: the prefix of its paths. */
export const DRIVE_NAME = 'kernelflow-run';

/** What the drive reads of a notebook's JSON. */
interface INotebookJSON {
  metadata?: { papermill?: { start_time?: string | null; end_time?: string | null } };
  cells?: { outputs?: { data?: Record<string, unknown> }[] }[];
}

const WIDGET_VIEW = 'application/vnd.jupyter.widget-view+json';

/**
 * Outputs that hold a live widget view and a static copy (HTML, text) keep
 * only the copy: the widget's model lived in the kernel that ran the
 * notebook, so the view could only say "model not found".
 */
function withoutLiveWidgets(notebook: INotebookJSON): INotebookJSON {
  for (const cell of notebook.cells ?? []) {
    for (const output of cell.outputs ?? []) {
      const data = output.data;
      if (data && WIDGET_VIEW in data && Object.keys(data).length > 1) {
        delete data[WIDGET_VIEW];
      }
    }
  }
  return notebook;
}

const EPOCH = new Date(0).toISOString();

/** `value` as an ISO time when it is one, else null. */
function validTime(value: string | null | undefined): string | null {
  if (!value) {
    return null;
  }
  const when = new Date(value);
  return Number.isNaN(when.getTime()) ? null : when.toISOString();
}

function readOnly(what: string): Error {
  return new Error(
    `Executed notebooks are read-only: ${what} is not possible. ` +
      'To keep an editable copy, use File › Save Notebook As… with a path of your own.'
  );
}

/** The run id and file name of a drive path (`<run id>/<name>.ipynb`). */
function splitPath(localPath: string): { runId: string; name: string } {
  const [runId, ...rest] = localPath.replace(/^\/+/, '').split('/');
  return { runId: decodeURIComponent(runId || ''), name: rest.join('/') || 'notebook.ipynb' };
}

/** A read-only Contents drive that serves each run's executed notebook. */
export class RunNotebookDrive implements Contents.IDrive {
  readonly name = DRIVE_NAME;
  readonly serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings();

  get fileChanged(): ISignal<Contents.IDrive, Contents.IChangedArgs> {
    return this._fileChanged;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    this._disposed = true;
    Signal.clearData(this);
  }

  async get(localPath: string, options?: Contents.IFetchOptions): Promise<Contents.IModel> {
    const { runId, name } = splitPath(localPath);
    // Fetched once per run: an executed notebook never changes.
    let content = this._cache.get(runId);
    if (content === undefined) {
      content = withoutLiveWidgets(await getJSON<INotebookJSON>(runPath(runId, 'notebook')));
      this._cache.set(runId, content);
    }
    // The lab shows and compares these times: papermill's, else a fixed one.
    const papermill = content.metadata?.papermill ?? {};
    const ended = validTime(papermill.end_time) ?? validTime(papermill.start_time) ?? EPOCH;
    const started = validTime(papermill.start_time) ?? ended;
    const model: Contents.IModel = {
      name,
      path: localPath,
      type: 'notebook',
      writable: false,
      created: started,
      last_modified: ended,
      mimetype: 'application/x-ipynb+json',
      content: null,
      format: null
    };
    if (options && options.content === false) {
      return model;
    }
    return { ...model, content, format: 'json' };
  }

  async getDownloadUrl(localPath: string): Promise<string> {
    return apiUrl(runPath(splitPath(localPath).runId, 'notebook'));
  }

  newUntitled(): Promise<Contents.IModel> {
    return Promise.reject(readOnly('a new file'));
  }

  delete(): Promise<void> {
    return Promise.reject(readOnly('deleting'));
  }

  rename(): Promise<Contents.IModel> {
    return Promise.reject(readOnly('renaming'));
  }

  save(): Promise<Contents.IModel> {
    return Promise.reject(readOnly('saving'));
  }

  copy(): Promise<Contents.IModel> {
    return Promise.reject(readOnly('copying'));
  }

  async createCheckpoint(): Promise<Contents.ICheckpointModel> {
    return Promise.reject(readOnly('a checkpoint'));
  }

  async listCheckpoints(): Promise<Contents.ICheckpointModel[]> {
    return []; // nothing is ever saved, so there is nothing to go back to
  }

  restoreCheckpoint(): Promise<void> {
    return Promise.reject(readOnly('restoring a checkpoint'));
  }

  deleteCheckpoint(): Promise<void> {
    return Promise.reject(readOnly('deleting a checkpoint'));
  }

  private _cache = new Map<string, INotebookJSON>();
  private _fileChanged = new Signal<Contents.IDrive, Contents.IChangedArgs>(this);
  private _disposed = false;
}

/** The drive path of a run's executed notebook. */
export function runNotebookPath(runId: string, title: string): string {
  const stem = title.replace(/\.ipynb$/i, '').replace(/[/\\:]+/g, '-') || 'run';
  return `${DRIVE_NAME}:${encodeURIComponent(runId)}/${stem}.ipynb`;
}

/** Open a run's executed notebook in a notebook tab (read-only). */
export async function openRunNotebook(
  app: JupyterFrontEnd,
  runId: string,
  title: string
): Promise<void> {
  // The copy gets a kernel like any notebook: the lab's widget manager
  // expects every notebook to have a session.
  await app.commands.execute('docmanager:open', {
    path: runNotebookPath(runId, title),
    factory: 'Notebook'
  });
}

/**
 * The HTML copy without what a sandbox without scripts would refuse anyway:
 * scripts, and style sheets and scripts from other hosts (a lab may have no
 * internet). The markup and inline styles stay, so the outputs read as saved.
 */
export function staticHtml(html: string): string {
  const doc = new DOMParser().parseFromString(html, 'text/html');
  const remote = (url: string | null) => !!url && /^(https?:)?\/\//i.test(url);
  for (const element of Array.from(doc.querySelectorAll('script, base, iframe, object, embed'))) {
    element.remove();
  }
  for (const link of Array.from(doc.querySelectorAll('link'))) {
    if (remote(link.getAttribute('href'))) {
      link.remove();
    }
  }
  for (const element of Array.from(doc.querySelectorAll('[src]'))) {
    if (remote(element.getAttribute('src'))) {
      element.removeAttribute('src');
    }
  }
  return `<!DOCTYPE html>\n${doc.documentElement.outerHTML}`;
}

/**
 * Open (or show again) the HTML copy of a run's notebook in a tab: an IFrame
 * sandboxed with no exceptions (no scripts, an opaque origin), fed from
 * `GET runs/<id>/html` through the lab's authenticated connection.
 */
export async function openRunHtml(
  app: JupyterFrontEnd,
  runId: string,
  title: string
): Promise<void> {
  const id = `kernelflow-html-${runId}`;
  for (const widget of app.shell.widgets('main')) {
    if (widget.id === id) {
      app.shell.activateById(id);
      return;
    }
  }
  const settings = ServerConnection.makeSettings();
  const response = await ServerConnection.makeRequest(apiUrl(runPath(runId, 'html')), {}, settings);
  const text = await response.text();
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      message = JSON.parse(text).message || message;
    } catch {
      // not JSON: keep the status line
    }
    throw new Error(message);
  }
  const frame = new IFrame({ sandbox: [], referrerPolicy: 'no-referrer' });
  frame.addClass('kf-HtmlFrame');
  // An IFrame widget's node always holds its one <iframe>.
  (frame.node.querySelector('iframe') as HTMLIFrameElement).srcdoc = staticHtml(text);
  const widget = new MainAreaWidget({ content: frame });
  widget.id = id;
  widget.title.label = `${title}.html`;
  widget.title.caption = `Executed notebook of run ${runId}, as HTML (read-only)`;
  widget.title.closable = true;
  app.shell.add(widget, 'main');
  app.shell.activateById(id);
}
