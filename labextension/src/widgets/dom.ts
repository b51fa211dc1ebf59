/**
 * Small DOM helpers shared by the jupyter-repro views (plain DOM, no
 * framework: the environment list must render hundreds of rows at once).
 */

/**
 * Create an element with a class name and optional text.
 */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/**
 * Create a labelled, keyboard-reachable button.
 */
export function button(options: {
  label: string;
  ariaLabel: string;
  testId: string;
  className: string;
  accent?: boolean;
}): HTMLButtonElement {
  const node = el(
    'button',
    `jp-Button jp-mod-styled jp-ReproPanel-button ${options.className}` +
      (options.accent ? ' jp-mod-accept' : '')
  );
  node.type = 'button';
  node.title = options.ariaLabel;
  node.setAttribute('aria-label', options.ariaLabel);
  node.dataset.testid = options.testId;
  node.append(el('span', 'jp-ReproPanel-buttonLabel', options.label));
  return node;
}

/**
 * Make `children` the children of `parent`, moving nodes only if needed
 * so that focus and screen-reader announcements are not disturbed.
 */
export function replaceChildren(
  parent: HTMLElement,
  children: HTMLElement[]
): void {
  const current = Array.from(parent.children);
  if (
    current.length === children.length &&
    current.every((child, index) => child === children[index])
  ) {
    return;
  }
  parent.replaceChildren(...children);
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;'
};

/**
 * `text` escaped for HTML text and attribute values.
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, c => ESCAPES[c]);
}

/**
 * A `<select>` with a label, for dialogs.
 */
export function labelledSelect<T extends string>(options: {
  label: string;
  testId: string;
  choices: readonly { value: T; label: string; title?: string }[];
  value: T;
}): { row: HTMLElement; select: HTMLSelectElement } {
  const row = el('label', 'jp-ReproDialog-field');
  row.append(el('span', 'jp-ReproDialog-fieldLabel', options.label));
  const select = el('select', 'jp-mod-styled jp-ReproDialog-select');
  select.dataset.testid = options.testId;
  select.setAttribute('aria-label', options.label);
  for (const choice of options.choices) {
    const option = el('option', '', choice.label);
    option.value = choice.value;
    if (choice.title) {
      option.title = choice.title;
    }
    select.append(option);
  }
  select.value = options.value;
  row.append(select);
  return { row, select };
}
