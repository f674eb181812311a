/**
 * One flow run as a row (the run list, a run's subflows) and the buttons that
 * act on a run (a row, a run's detail header).
 */
import { type IRunDetail, type IRunStarted, type IRunSummary, request, runPath } from '../api';
import { h } from '../dom';
import { runDuration } from '../format';
import type { PanelStore } from '../store';
import { actionButton, badge, FINAL, kindBadge, runKind, timeCell } from './common';

/** Cancel for an unfinished run, rerun for a finished deployment run. */
export function runActions(
  store: PanelStore,
  run: IRunSummary | IRunDetail['run']
): HTMLElement | null {
  const type = (run.state_type || '').toUpperCase();
  const buttons: HTMLButtonElement[] = [];
  if (type && !FINAL.has(type) && type !== 'CANCELLING' && run.state_name !== 'Skipped') {
    buttons.push(
      actionButton('Cancel', 'cancel', () =>
        store.act('Cancel', () => request('POST', runPath(run.id, 'cancel')))
      )
    );
  }
  const isDeployment = runKind(run as IRunSummary) === 'deployment' || !!run.deployment_id;
  // A Skipped slot is history, not a failure: it gets no Rerun button.
  if (isDeployment && FINAL.has(type) && type !== 'COMPLETED' && run.state_name !== 'Skipped') {
    buttons.push(
      actionButton(
        'Rerun',
        'rerun',
        () =>
          store.act('Rerun', async () => {
            const started = await request<IRunStarted>('POST', runPath(run.id, 'rerun'));
            store.setStatus(`Started run ${started.run_id.slice(0, 8)}`);
          }),
        'Run the deployment again with the same parameters'
      )
    );
  }
  return buttons.length ? h('div', { class: 'kf-RowActions' }, buttons) : null;
}

/** A run as a focusable row that opens the run's detail on click, Enter or Space. */
export function runRow(store: PanelStore, run: IRunSummary): HTMLLIElement {
  const tasks = run.task_runs.total;
  const kind = runKind(run);
  const display = run.display_name || run.name || run.id.slice(0, 8);
  const folded = run.folded && run.folded > 1 ? run.folded : 0;
  const counts: HTMLElement[] = [];
  if (run.failed_tasks) {
    counts.push(h('span', { class: 'kf-Count kf-mod-failed' }, `${run.failed_tasks} failed`));
  }
  if (run.crashed_tasks) {
    counts.push(h('span', { class: 'kf-Count kf-mod-crashed' }, `${run.crashed_tasks} crashed`));
  }
  const row = h(
    'li',
    {
      class: `kf-RunRow${folded ? ' kf-mod-folded' : ''}`,
      'data-kf-run-id': run.id,
      'data-kf-kind': kind,
      // Focusable and opened with Enter or Space, but no role="button": a row
      // holds real buttons (cancel, rerun), which a button may not contain.
      tabindex: '0',
      title: run.state_message || undefined
    },
    h(
      'div',
      { class: 'kf-RunRow-main' },
      badge(run.state_name, run.state_type),
      h(
        'span',
        { class: 'kf-RunRow-flow', title: run.flow_name || undefined },
        run.flow_name || '(unnamed flow)'
      ),
      folded ? h('span', { class: 'kf-Folded' }, `×${folded}`) : null,
      h('span', { class: 'kf-RunRow-duration' }, runDuration(run))
    ),
    h(
      'div',
      { class: 'kf-RunRow-meta' },
      kindBadge(kind),
      h(
        'span',
        {
          class: 'kf-RunRow-name',
          title: run.path ? `${display}\n${run.path}` : display
        },
        display
      ),
      timeCell(run.start_time || run.created),
      h('span', { class: 'kf-RunRow-tasks' }, `${tasks} task run${tasks === 1 ? '' : 's'}`),
      counts
    ),
    folded
      ? h(
          'div',
          { class: 'kf-RunRow-reason' },
          `${folded} skipped runs${run.reason ? `: ${run.reason}` : ''}`
        )
      : run.reason && run.state_name === 'Skipped'
        ? h('div', { class: 'kf-RunRow-reason' }, run.reason)
        : null,
    runActions(store, run)
  );
  const open = () => store.showRun(run.id);
  row.addEventListener('click', open);
  row.addEventListener('keydown', event => {
    if (event.target === row && (event.key === 'Enter' || event.key === ' ')) {
      event.preventDefault();
      open();
    }
  });
  return row;
}
