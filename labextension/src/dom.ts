/**
 * A tiny element builder. Text always goes in as text nodes, never as HTML:
 * run names, messages and log lines come from user code.
 */

type Child = Node | string | number | null | undefined | false;

/** Create `<tag>` with attributes (`class`, `title`, `data-*`, ...) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | null | undefined> = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) {
      element.setAttribute(key, value);
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    element.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** A state badge: colored, with the state name and the state type as data attributes. */
export function stateBadge(
  name: string | null | undefined,
  type: string | null | undefined,
  stateClassName: string
): HTMLSpanElement {
  return h(
    'span',
    {
      class: `kf-StateBadge ${stateClassName}`,
      'data-kf-state': name || type || 'Unknown',
      title: type || undefined
    },
    name || type || 'Unknown'
  );
}
