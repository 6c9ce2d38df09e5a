/**
 * OpenAI's eval templates: `{{item.field}}` and `{{sample.output_text}}` in
 * message contents and grader inputs, replaced by the value at that path of
 * the item (or of the sample the run produced). A path is dot-separated keys;
 * a key made of digits indexes an array (`{{item.choices.0}}`). Strings are
 * inserted as they are, other values as JSON.
 *
 * Only `{{ namespace.path }}` with an identifier-like path is a variable;
 * other text in braces stays as it is. An unknown namespace is refused when
 * the eval is created; a path the item does not have makes that item an
 * errored result. What a template renders to is bounded (`maxChars`), since a
 * short template can repeat a large field many times.
 */

export const NAMESPACES = ['item', 'sample'] as const;
export type Namespace = (typeof NAMESPACES)[number];

const VARIABLE = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z0-9_-]+)*)\s*\}\}/g;

export interface Reference {
  namespace: string;
  path: string[];
}

/** The variables a template names, in order. */
export function references(template: string): Reference[] {
  const out: Reference[] = [];
  for (const m of template.matchAll(VARIABLE)) out.push({ namespace: m[1], path: m[2] ? m[2].slice(1).split('.') : [] });
  return out;
}

/** An item that lacks what a template asks of it, or renders too large: that item's result is an error. */
export class TemplateRenderError extends Error {}

export interface TemplateContext {
  item: unknown;
  /** Absent before the sample exists (the run's own input messages). */
  sample?: unknown;
}

/** The value at `path` in the context, or throws TemplateRenderError. */
export function lookup(ctx: TemplateContext, ref: Reference): unknown {
  if (ref.namespace !== 'item' && ref.namespace !== 'sample') throw new TemplateRenderError(`unknown template namespace "${ref.namespace}" (use item or sample)`);
  let node: unknown = ref.namespace === 'item' ? ctx.item : ctx.sample;
  const shown = [ref.namespace];
  if (node === undefined) throw new TemplateRenderError(`{{${ref.namespace}}} is not available here: the run has no sample for this item`);
  for (const key of ref.path) {
    shown.push(key);
    if (Array.isArray(node) && /^\d+$/.test(key) && Number(key) < node.length) node = node[Number(key)];
    else if (node !== null && typeof node === 'object' && !Array.isArray(node) && Object.hasOwn(node, key)) node = (node as Record<string, unknown>)[key];
    else throw new TemplateRenderError(`{{${shown.join('.')}}}: the ${ref.namespace} has no such field`);
  }
  return node;
}

export function valueText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value) ?? 'null';
}

/** The template with every variable replaced; throws TemplateRenderError for a missing field or past `maxChars`. */
export function renderTemplate(template: string, ctx: TemplateContext, maxChars: number): string {
  let out = '';
  let last = 0;
  for (const m of template.matchAll(VARIABLE)) {
    out += template.slice(last, m.index);
    out += valueText(lookup(ctx, { namespace: m[1], path: m[2] ? m[2].slice(1).split('.') : [] }));
    last = m.index! + m[0].length;
    if (out.length > maxChars) break;
  }
  out += template.slice(last);
  if (out.length > maxChars) throw new TemplateRenderError(`a template renders to more than ${maxChars} characters (--eval-max-item-bytes)`);
  return out;
}

/** `item.input_trajectory` (an item_reference): the value at that path. */
export function resolveReference(reference: string, ctx: TemplateContext): unknown {
  const [namespace, ...path] = reference.split('.');
  return lookup(ctx, { namespace, path });
}
