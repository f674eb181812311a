/**
 * Dialogs that act on the server: the accept button sends the request, and
 * the dialog stays open with the server's one-line message when it fails.
 */
import { Dialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { h } from './dom';

/** A dialog body that can show an error line and hand over its value. */
export abstract class FormBody<T> extends Widget {
  constructor() {
    super();
    this.addClass('kf-Form');
    this.errorLine = h('div', { class: 'kf-FormError', role: 'alert' });
  }

  /** The value to submit; throws an Error with a one-line message for bad input. */
  abstract getValue(): T;

  /** Show `message` under the form (empty: hide it). */
  showError(message: string): void {
    this.errorLine.textContent = message;
    this.errorLine.classList.toggle('kf-mod-visible', message !== '');
  }

  /** The error line: a subclass places it at the end of its node. */
  protected readonly errorLine: HTMLDivElement;
}

/**
 * A Dialog whose accept button runs `submit` first: the dialog closes only
 * when it succeeds; otherwise the body shows the error and the reader can fix
 * the input and try again.
 */
class SubmitDialog<T, R> extends Dialog<T> {
  constructor(
    options: Partial<Dialog.IOptions<T>> & { body: FormBody<T> },
    private readonly _submit: (value: T) => Promise<R>,
    private readonly _buttonList: readonly Dialog.IButton[]
  ) {
    super({ ...options, buttons: _buttonList });
    this._form = options.body;
  }

  /** The submit function's answer once the dialog closed on success. */
  result: R | null = null;

  resolve(index?: number): void {
    const button = this._buttonList[index ?? this._buttonList.length - 1];
    if (!button?.accept) {
      super.resolve(index);
      return;
    }
    if (this._busy) {
      return;
    }
    let value: T;
    try {
      value = this._form.getValue();
    } catch (error) {
      this._form.showError((error as Error).message);
      return;
    }
    this._busy = true;
    this.addClass('kf-mod-busy');
    this._form.showError('');
    this._submit(value)
      .then(result => {
        this.result = result;
        super.resolve(index);
      })
      .catch((error: Error) => {
        this._form.showError(error.message);
      })
      .finally(() => {
        this._busy = false;
        if (!this.isDisposed) {
          this.removeClass('kf-mod-busy');
        }
      });
  }

  private _form: FormBody<T>;
  private _busy = false;
}

/**
 * Show `body` in a dialog; its accept button (`accept`) calls `submit` with
 * the body's value. Resolves with `submit`'s answer, or null when cancelled.
 */
export async function submitDialog<T, R>(options: {
  title: string;
  body: FormBody<T>;
  accept: string;
  submit: (value: T) => Promise<R>;
  danger?: boolean;
  /** A CSS selector of the element to focus first (default: the accept button). */
  focus?: string;
}): Promise<R | null> {
  const buttons = [
    Dialog.cancelButton(),
    options.danger
      ? Dialog.warnButton({ label: options.accept })
      : Dialog.okButton({ label: options.accept })
  ];
  const dialog = new SubmitDialog<T, R>(
    { title: options.title, body: options.body, focusNodeSelector: options.focus },
    options.submit,
    buttons
  );
  dialog.addClass('kf-Dialog');
  const answer = await dialog.launch();
  return answer.button.accept ? dialog.result : null;
}

/** A body with a message and nothing to fill in. */
class MessageBody extends FormBody<null> {
  constructor(message: string) {
    super();
    this.node.appendChild(h('p', { class: 'kf-FormText' }, message));
    this.node.appendChild(this.errorLine);
  }

  getValue(): null {
    return null;
  }
}

/**
 * Ask before an action that cannot be undone; `act` runs on accept and its
 * error, if any, shows in the dialog. Resolves with `act`'s answer or null.
 */
export function confirmDialog<R>(
  title: string,
  message: string,
  accept: string,
  act: () => Promise<R>
): Promise<R | null> {
  return submitDialog<null, R>({
    title,
    body: new MessageBody(message),
    accept,
    submit: () => act(),
    danger: true
  });
}
