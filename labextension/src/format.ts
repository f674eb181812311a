/**
 * How runs read in the panel: durations, times and state classes.
 */

/** `35 ms`, `1.2 s`, `3 min 4 s`, `2 h 5 min`. */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) {
    return '';
  }
  if (seconds < 1) {
    const ms = Math.round(seconds * 1000);
    return ms < 1 ? '<1 ms' : `${ms} ms`;
  }
  if (seconds < 10) {
    return `${seconds.toFixed(1)} s`;
  }
  if (seconds < 60) {
    return `${Math.round(seconds)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
  }
  const hours = Math.floor(minutes / 60);
  return `${hours} h ${minutes - hours * 60} min`;
}

/**
 * A run's duration: the recorded one, or for an unfinished run the time
 * since it started (so a Running row keeps counting on each refresh).
 */
export function runDuration(run: {
  duration_s: number | null;
  start_time: string | null;
  end_time: string | null;
}): string {
  if (run.duration_s !== null && run.duration_s !== undefined) {
    return formatDuration(run.duration_s);
  }
  if (run.start_time && !run.end_time) {
    const elapsed = (Date.now() - Date.parse(run.start_time)) / 1000;
    return elapsed >= 0 ? formatDuration(elapsed) : '';
  }
  return '';
}

/** A local time: `14:03:22` today, `Mar 4 14:03` otherwise. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) {
    return '';
  }
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) {
    return '';
  }
  const now = new Date();
  if (when.toDateString() === now.toDateString()) {
    return when.toLocaleTimeString([], { hour12: false });
  }
  return when.toLocaleString([], {
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    hour12: false
  });
}

/** `5 s ago`, `3 min ago`, `in 2 h`: for the title of a time. */
export function relativeTime(iso: string | null | undefined): string {
  if (!iso) {
    return '';
  }
  const delta = (Date.parse(iso) - Date.now()) / 1000;
  if (Number.isNaN(delta)) {
    return '';
  }
  const text = formatDuration(Math.abs(delta)).replace(/\.\d+/, '');
  return delta < 0 ? `${text} ago` : `in ${text}`;
}

/** The CSS class that colors a state, by its name (`Cached`) with its type as fallback. */
export function stateClass(
  name: string | null | undefined,
  type: string | null | undefined
): string {
  const key = (name || type || 'unknown').toLowerCase().replace(/[^a-z]/g, '');
  return `kf-state-${key}`;
}

/** The state names and types the server's `state` filter accepts (Prefect's vocabulary). */
export const STATE_FILTERS: { label: string; value: string }[] = [
  { label: 'All states', value: '' },
  { label: 'Completed', value: 'Completed' },
  { label: 'Cached', value: 'Cached' },
  { label: 'Failed (any)', value: 'failed' },
  { label: 'Failed', value: 'Failed' },
  { label: 'TimedOut', value: 'TimedOut' },
  { label: 'Crashed', value: 'Crashed' },
  { label: 'Running', value: 'running' },
  { label: 'Pending', value: 'Pending' },
  { label: 'Scheduled', value: 'Scheduled' },
  { label: 'Late', value: 'Late' },
  { label: 'Cancelled', value: 'Cancelled' },
  { label: 'Paused', value: 'Paused' }
];
