/**
 * The "Run now" dialog: start one run of a deployment, overriding some of
 * its parameters.
 */
import { deploymentPath, type IDeployment, type IRunStarted, request } from './api';
import { FormBody, submitDialog } from './dialogs';
import { h } from './dom';
import { type IParamSpec, ParamInputs } from './params';
import { readParameters } from './schedule';

/** The body of the "Run now" dialog: the parameters to override. */
class RunNowForm extends FormBody<Record<string, unknown>> {
  constructor(
    parameters: IParamSpec[] | null,
    current: Record<string, unknown>,
    error: string | null
  ) {
    super();
    this._params = parameters ? new ParamInputs(parameters, current, 'kf-run-param') : null;
    this.node.append(
      h(
        'div',
        { class: 'kf-FormText' },
        parameters?.length
          ? 'Run once now, with these parameters (changed values override the deployment\u2019s):'
          : parameters
            ? 'Run once now. The notebook has no parameters.'
            : error || ''
      ),
      this._params ? this._params.node : '',
      this.errorLine
    );
  }

  getValue(): Record<string, unknown> {
    return this._params ? this._params.values(true) : {};
  }

  private _params: ParamInputs | null;
}

/**
 * Ask for parameter overrides, then start a run of `deployment` now.
 * Resolves with the new run, or null when cancelled.
 */
export async function runNowDialog(deployment: IDeployment): Promise<IRunStarted | null> {
  const [parameters, error] = await readParameters(deployment.notebook);
  const body = new RunNowForm(parameters, deployment.parameters || {}, error);
  return submitDialog<Record<string, unknown>, IRunStarted>({
    title: `Run ${deployment.name} now`,
    body,
    accept: 'Run',
    submit: overrides =>
      request<IRunStarted>(
        'POST',
        deploymentPath(deployment.name, 'runs'),
        Object.keys(overrides).length ? { parameters: overrides } : {}
      )
  });
}
