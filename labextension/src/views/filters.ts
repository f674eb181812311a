/**
 * The run list's filter bar: state, flow, deployment and a range of days.
 * A change goes into the store, which goes back to the list's first page.
 */
import { h } from '../dom';
import { STATE_FILTERS } from '../format';
import type { PanelStore } from '../store';

/** Keep `select`'s options to `values` (plus its current value), its first option first. */
function fillOptions(select: HTMLSelectElement, values: Iterable<string>): void {
  const wanted = new Set(values);
  if (select.value) {
    wanted.add(select.value);
  }
  const sorted = [...wanted].sort((a, b) => a.localeCompare(b));
  const current = [...select.options].slice(1).map(o => o.value);
  if (JSON.stringify(current) === JSON.stringify(sorted)) {
    return; // leave an open drop-down alone
  }
  const value = select.value;
  const first = select.options[0];
  select.replaceChildren(first, ...sorted.map(v => h('option', { value: v }, v)));
  select.value = value;
}

/** The filter controls above the run list. */
export class FilterBar {
  /** The bar's element. */
  readonly node: HTMLDivElement;

  constructor(private readonly _store: PanelStore) {
    this._state = h(
      'select',
      {
        class: 'kf-StateFilter kf-Filter',
        title: 'Show only runs in this state',
        'aria-label': 'State'
      },
      STATE_FILTERS.map(f => h('option', { value: f.value }, f.label))
    );
    this._flow = h(
      'select',
      {
        class: 'kf-FlowFilter kf-Filter',
        title: 'Show only runs of this flow',
        'aria-label': 'Flow'
      },
      h('option', { value: '' }, 'All flows')
    );
    this._deployment = h(
      'select',
      {
        class: 'kf-DeploymentFilter kf-Filter',
        title: 'Show only runs of this deployment',
        'aria-label': 'Deployment'
      },
      h('option', { value: '' }, 'All deployments')
    );
    this._since = h('input', {
      type: 'date',
      class: 'kf-SinceFilter kf-Filter',
      title: 'Runs created on or after this day',
      'aria-label': 'From day'
    });
    this._until = h('input', {
      type: 'date',
      class: 'kf-UntilFilter kf-Filter',
      title: 'Runs created on or before this day',
      'aria-label': 'To day'
    });
    const changed = () =>
      this._store.setFilters({
        state: this._state.value,
        flow: this._flow.value,
        deployment: this._deployment.value,
        since: this._since.value,
        until: this._until.value
      });
    for (const filter of [this._state, this._flow, this._deployment, this._since, this._until]) {
      filter.addEventListener('change', changed);
    }
    this.node = h(
      'div',
      { class: 'kf-Filters', role: 'group', 'aria-label': 'Filters' },
      this._state,
      this._flow,
      this._deployment,
      h(
        'span',
        { class: 'kf-DateRange' },
        this._since,
        h('span', { 'aria-hidden': 'true' }, '–'),
        this._until
      )
    );
  }

  /** Offer every flow name seen so far in the flow filter. */
  addFlowNames(names: Iterable<string | null>): void {
    for (const name of names) {
      if (name) {
        this._flowNames.add(name);
      }
    }
    fillOptions(this._flow, this._flowNames);
  }

  /** Offer these deployments in the deployment filter. */
  setDeployments(names: Iterable<string>): void {
    fillOptions(this._deployment, names);
  }

  private readonly _state: HTMLSelectElement;
  private readonly _flow: HTMLSelectElement;
  private readonly _deployment: HTMLSelectElement;
  private readonly _since: HTMLInputElement;
  private readonly _until: HTMLInputElement;
  /** Every flow name seen, for the flow filter. */
  private readonly _flowNames = new Set<string>();
}
