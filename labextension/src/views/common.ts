/**
 * Pieces more than one view draws: state and kind badges, times, action
 * buttons, and keeping the keyboard focus across a redraw.
 */
import type { IRunSummary } from '../api';
import { h, stateBadge } from '../dom';
import { formatTime, relativeTime, stateClass } from '../format';

/** State types after which a run no longer changes. */
export const FINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'CRASHED']);

/** A colored state badge. */
export function badge(name: string | null, type: string | null): HTMLSpanElement {
  return stateBadge(name, type, stateClass(name, type));
}

/** A run that started and has not ended: its shown duration changes every second. */
export function unfinished(run: { start_time: string | null; end_time: string | null }): boolean {
  return run.start_time !== null && run.end_time === null;
}

/** A `<time>` with the local time as text and "N ago" as its tooltip. */
export function timeCell(iso: string | null): HTMLElement {
  return h('time', { datetime: iso, title: relativeTime(iso) }, formatTime(iso));
}

/** What kind of run a row is; older servers send no `kind`, only a parent id. */
export function runKind(run: IRunSummary): string {
  return run.kind || (run.parent_flow_run_id ? 'subflow' : 'flow');
}

/** A small outlined label: `subflow`, `session`, `deployment`. */
export function kindBadge(kind: string): HTMLElement | null {
  if (kind === 'flow') {
    return null; // the common case needs no label
  }
  return h('span', { class: `kf-KindBadge kf-kind-${kind}`, 'data-kf-kind': kind }, kind);
}

/**
 * A button that acts on its own: its click does not also open the row it
 * sits in. `act` may return a promise; the button is disabled meanwhile.
 */
export function actionButton(
  label: string,
  action: string,
  act: () => Promise<unknown> | undefined,
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

/** The row attributes a focused element is found again by. */
const ROW_KEYS = ['data-kf-run-id', 'data-kf-deployment', 'data-kf-actions-for'];

/** A selector that finds the element focused inside `body` again after a redraw. */
export function focusKey(body: HTMLElement): string | null {
  const active = document.activeElement as HTMLElement | null;
  if (!active || !body.contains(active)) {
    return null;
  }
  const row = active.closest(ROW_KEYS.map(k => `[${k}]`).join(','));
  if (!row) {
    return null;
  }
  // `closest` matched one of ROW_KEYS, so both finds succeed.
  const attr = ROW_KEYS.find(a => row.hasAttribute(a)) as string;
  const action = active.getAttribute('data-kf-action');
  const where = `[${attr}="${CSS.escape(row.getAttribute(attr) as string)}"]`;
  return action ? `${where} [data-kf-action="${action}"]` : where;
}

/** Focus what `focusKey` described, if it is still there. */
export function restoreFocus(body: HTMLElement, selector: string | null): void {
  if (selector) {
    (body.querySelector(selector) as HTMLElement | null)?.focus();
  }
}
