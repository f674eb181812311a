/**
 * The state the panel's views share, and the one refresh loop that reads it.
 *
 * The views (the run list with its filters, the deployments, one run's detail)
 * never call each other: they read and change this store, and ask it to
 * refresh. The store coalesces refreshes (one at a time; a request made
 * meanwhile runs once more afterwards), polls while the panel is visible, and
 * remembers what the body shows now so that unchanged data is not redrawn.
 */
import type { ILogPageRequest } from './api';

/** Milliseconds between refreshes while the panel is visible. */
export const REFRESH_MS = 5000;

/** Runs fetched per page ("Load more" asks for one more page). */
export const PAGE = 50;

/** Log lines per page of a run's logs. */
export const LOG_PAGE = 200;

/** The run list's filters, as the reader set them (empty string: no filter). */
export interface IRunFilters {
  state: string;
  flow: string;
  deployment: string;
  /** `yyyy-mm-dd`: runs created on or after this day. */
  since: string;
  /** `yyyy-mm-dd`: runs created on or before this day. */
  until: string;
}

/** What the panel's shell does for the store: fetch and draw, show a status line. */
export interface IPanelHost {
  /** Fetch what the current view shows and draw it if it changed. */
  load(): Promise<void>;
  /** Show `text` in the status line, in red when `error`. */
  showStatus(text: string, error: boolean): void;
  /** Mark the panel busy or idle. */
  showLoading(loading: boolean): void;
  /** Whether the panel can be seen (polling asks the server nothing otherwise). */
  isVisible(): boolean;
  /** Say in the body that run `id` is loading, until its detail arrives. */
  showOpening(id: string): void;
}

/** `yyyy-mm-dd` (a date input's value) to the start of that day in the browser's zone. */
function dayStart(value: string): string | undefined {
  if (!value) {
    return undefined;
  }
  const day = new Date(`${value}T00:00:00`);
  return Number.isNaN(day.getTime()) ? undefined : day.toISOString();
}

/** `yyyy-mm-dd` to the start of the next day: the end of that day, exclusive. */
function dayEnd(value: string): string | undefined {
  if (!value) {
    return undefined;
  }
  const day = new Date(`${value}T00:00:00`);
  if (Number.isNaN(day.getTime())) {
    return undefined;
  }
  day.setDate(day.getDate() + 1);
  return day.toISOString();
}

/** The panel's shared state: which run is open, the filters, the refresh loop. */
export class PanelStore {
  constructor(private readonly _host: IPanelHost) {}

  /** The run whose detail is shown; null: the list of runs. */
  get selected(): string | null {
    return this._selected;
  }

  /** The page of the selected run's logs the reader asked for; null: the newest lines. */
  logPage: ILogPageRequest | null = null;

  /** How many runs the list asks for. */
  limit = PAGE;

  /**
   * A key of what the body shows now ('' when it must be redrawn): a view
   * compares it with the key of fresh data and redraws only when they differ.
   */
  rendered = '';

  /** The run list's filters. */
  get filters(): Readonly<IRunFilters> {
    return this._filters;
  }

  /** New filter values: back to the first page of the list. */
  setFilters(filters: IRunFilters): void {
    this._filters = { ...filters };
    this.limit = PAGE;
    this._selected = null;
    void this.refresh();
  }

  /** The filters and page size, as the server's query parameters. */
  query(): Record<string, string | number | undefined> {
    const f = this._filters;
    return {
      state: f.state,
      flow: f.flow,
      deployment: f.deployment,
      since: dayStart(f.since),
      until: dayEnd(f.until),
      limit: this.limit
    };
  }

  /** Open one run's detail. */
  showRun(id: string): void {
    this._selected = id;
    this.logPage = null;
    this.rendered = '';
    this._host.showOpening(id);
    void this.refresh();
  }

  /** Go back to the list of runs. */
  showList(): void {
    this._selected = null;
    this.rendered = '';
    void this.refresh();
  }

  /** Show `text` in the panel's status line. */
  setStatus(text: string, error = false): void {
    this._host.showStatus(text, error);
  }

  /** Fetch what the current view shows; one at a time, a request made meanwhile runs after. */
  async refresh(): Promise<void> {
    if (this._loading) {
      this._again = true;
      return;
    }
    this._loading = true;
    this._host.showLoading(true);
    try {
      await this._host.load();
    } finally {
      this._loading = false;
      this._host.showLoading(false);
    }
    if (this._again) {
      this._again = false;
      await this.refresh();
    }
  }

  /** Redraw the current view even if its data did not change. */
  redraw(): Promise<void> {
    this.rendered = '';
    return this.refresh();
  }

  /** Run `act`; report its failure in the status line; redraw either way. */
  async act(what: string, act: () => Promise<unknown>): Promise<void> {
    try {
      await act();
      this.setStatus(`${what}: done`);
    } catch (error) {
      this.setStatus(`${what} failed: ${(error as Error).message}`, true);
    }
    await this.redraw();
  }

  /** Refresh every few seconds while the panel and the browser tab are visible. */
  startPolling(): void {
    if (this._timer === null) {
      this._timer = window.setInterval(() => {
        if (this._host.isVisible() && document.visibilityState === 'visible') {
          void this.refresh();
        }
      }, REFRESH_MS);
    }
  }

  /** Stop polling (the panel is hidden, detached or disposed). */
  stopPolling(): void {
    if (this._timer !== null) {
      window.clearInterval(this._timer);
      this._timer = null;
    }
  }

  private _selected: string | null = null;
  private _filters: IRunFilters = { state: '', flow: '', deployment: '', since: '', until: '' };
  private _loading = false;
  private _again = false;
  private _timer: number | null = null;
}
