/**
 * Typed inputs for a notebook's parameters (and a paused run's form fields):
 * one input per parameter, checked by the browser for its type, read back as
 * JSON values.
 */
import { h } from './dom';

/** A parameter to fill in: its name, type (`int`, `float`, `bool`, `str`...) and default. */
export interface IParamSpec {
  name: string;
  type: string;
  default: unknown;
  default_text?: string;
  description?: string | null;
}

/** `n: int = 10`: how a parameter reads in the panel. */
export function paramSignature(name: string, type: string, valueText: string): string {
  return `${name}${type ? `: ${type}` : ''}${valueText !== '' ? ` = ${valueText}` : ''}`;
}

function defaultText(spec: IParamSpec): string {
  if (spec.default_text !== undefined) {
    return spec.default_text;
  }
  return spec.default === undefined ? '' : JSON.stringify(spec.default);
}

/** The inputs of a set of parameters, with what each one holds. */
export class ParamInputs {
  /**
   * @param specs - the parameters, in the notebook's order.
   * @param values - values to start from (an edited deployment's), by name.
   * @param prefix - keeps the inputs' ids unique within a page.
   */
  constructor(
    readonly specs: IParamSpec[],
    values: Record<string, unknown> = {},
    prefix = 'kf-param'
  ) {
    this.node = h('div', { class: 'kf-Params' });
    for (const spec of specs) {
      const id = `${prefix}-${spec.name}`;
      const type = (spec.type || '').toLowerCase();
      const given = Object.hasOwn(values, spec.name);
      const value = given ? values[spec.name] : spec.default;
      let input: HTMLInputElement;
      if (type === 'bool') {
        input = h('input', { type: 'checkbox', id, 'data-kf-param': spec.name });
        input.checked = Boolean(value);
      } else if (type === 'int' || type === 'float') {
        input = h('input', {
          type: 'number',
          id,
          step: type === 'int' ? '1' : 'any',
          'data-kf-param': spec.name,
          class: 'kf-Input'
        });
        input.value = value === null || value === undefined ? '' : String(value);
      } else {
        input = h('input', { type: 'text', id, 'data-kf-param': spec.name, class: 'kf-Input' });
        input.value =
          value === null || value === undefined
            ? ''
            : type === 'str'
              ? String(value)
              : JSON.stringify(value);
      }
      input.setAttribute('aria-describedby', `${id}-hint`);
      this._inputs.set(spec.name, input);
      this._initial.set(spec.name, this._read(spec, input));
      this.node.appendChild(
        h(
          'div',
          { class: 'kf-Param' },
          h(
            'label',
            { for: id, class: 'kf-ParamLabel' },
            h('code', {}, paramSignature(spec.name, spec.type, ''))
          ),
          input,
          h(
            'span',
            { id: `${id}-hint`, class: 'kf-Hint' },
            spec.description || `default ${defaultText(spec) || 'none'}`
          )
        )
      );
    }
  }

  /** The inputs' container. */
  readonly node: HTMLDivElement;

  /**
   * The values, parsed for their types.
   *
   * @param changedOnly - leave out values still equal to where the inputs started.
   * @throws Error with a one-line message naming a value that does not parse.
   */
  values(changedOnly = false): Record<string, unknown> {
    const result: Record<string, unknown> = {};
    for (const spec of this.specs) {
      // The constructor made an input for every spec.
      const input = this._inputs.get(spec.name) as HTMLInputElement;
      const value = this._read(spec, input);
      if (changedOnly && JSON.stringify(value) === JSON.stringify(this._initial.get(spec.name))) {
        continue;
      }
      if (value !== undefined) {
        result[spec.name] = value;
      }
    }
    return result;
  }

  private _read(spec: IParamSpec, input: HTMLInputElement): unknown {
    const type = (spec.type || '').toLowerCase();
    const raw = input.value;
    if (type === 'bool') {
      return input.checked;
    }
    if (type === 'str') {
      return raw;
    }
    if (raw.trim() === '') {
      return undefined;
    }
    if (type === 'int' || type === 'float') {
      const number = Number(raw);
      if (!Number.isFinite(number) || (type === 'int' && !Number.isInteger(number))) {
        const what = type === 'int' ? 'an integer' : 'a number';
        throw new Error(`Parameter ${spec.name} must be ${what}.`);
      }
      return number;
    }
    // Lists, dicts and types we do not know: JSON when it parses, else the text.
    try {
      return JSON.parse(raw);
    } catch {
      return raw;
    }
  }

  private _inputs = new Map<string, HTMLInputElement>();
  private _initial = new Map<string, unknown>();
}
