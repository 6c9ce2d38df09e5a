/**
 * A custom data source's `item_schema`: compiled once (ajv), then every item
 * of a run is checked against it; an item that fails is an errored result.
 *
 * The schema comes from the client, so what checking costs is bounded: its
 * size (`maxSchemaBytes`), and its `pattern` / `patternProperties` regular
 * expressions, which run on the project's byte automata (chat/json-string.ts)
 * instead of the backtracking RegExp engine: linear in the string, whatever
 * the pattern (`(a+)+$` included), at most `patternStates` states each.
 * Patterns the automata cannot express (backreferences, lookaround, \b, \p{…})
 * are refused when the eval is created. `format` is not checked.
 */
import Ajv, { type AnySchema, type ErrorObject, type ValidateFunction } from 'ajv';
import Ajv2019 from 'ajv/dist/2019.js';
import Ajv2020 from 'ajv/dist/2020.js';
import { patternAutomaton } from '../chat/json-string.ts';

export interface ItemSchemaLimits {
  /** Bytes of the schema as JSON. */
  maxSchemaBytes: number;
  /** States of one pattern's automaton. */
  patternStates: number;
}

/** The schema cannot be used: `message` says why (for a 400). */
export class ItemSchemaError extends Error {}

export interface ItemValidator {
  /** undefined when the item is valid, else what is wrong with it (ajv's first errors, as text). */
  check(item: unknown): string | undefined;
}

type AjvClass = new (opts: object) => { compile(schema: AnySchema): ValidateFunction };

function ajvFor(schema: Record<string, unknown>): AjvClass {
  const draft = typeof schema.$schema === 'string' ? schema.$schema : '';
  if (draft.includes('2020-12')) return Ajv2020.default as unknown as AjvClass;
  if (draft.includes('2019-09')) return Ajv2019.default as unknown as AjvClass;
  return Ajv.default as unknown as AjvClass;
}

/** ajv's RegExp engine option: the pattern as a byte automaton over the JSON-escaped string (linear time). */
function automatonEngine(states: number) {
  const engine = (pattern: string) => {
    let dfa;
    try {
      dfa = patternAutomaton(pattern, 'json-string', { dfaStates: states, nfaStates: 8 * states });
    } catch (e) {
      throw new ItemSchemaError(`item_schema pattern ${JSON.stringify(pattern)} is not supported: ${(e as Error).message}`);
    }
    return {
      test: (s: string) => dfa.accepts(Buffer.from(JSON.stringify(s).slice(1, -1), 'utf8')),
      // ajv keys its cache of compiled patterns by this.
      toString: () => `/${pattern}/`,
    };
  };
  return Object.assign(engine, { code: 'mmrec-automaton' });
}

/** Compiles `schema` for items; throws ItemSchemaError (bad schema, too large, unsupported pattern). */
export function compileItemSchema(schema: Record<string, unknown>, limits: ItemSchemaLimits): ItemValidator {
  const bytes = Buffer.byteLength(JSON.stringify(schema));
  if (bytes > limits.maxSchemaBytes) throw new ItemSchemaError(`item_schema is ${bytes} bytes of JSON; at most ${limits.maxSchemaBytes} are accepted (--eval-max-schema-bytes).`);
  const AjvOf = ajvFor(schema);
  // A new instance per schema: ajv keeps every schema it compiled, which would grow with every eval.
  const ajv = new AjvOf({ strict: false, allErrors: false, validateFormats: false, code: { regExp: automatonEngine(limits.patternStates) } });
  let validate: ValidateFunction;
  try {
    validate = ajv.compile(schema);
  } catch (e) {
    if (e instanceof ItemSchemaError) throw e;
    throw new ItemSchemaError(`item_schema is not a usable JSON Schema: ${(e as Error).message}`);
  }
  return {
    check(item) {
      try {
        if (validate(item)) return undefined;
      } catch (e) {
        return `the item could not be checked against item_schema: ${(e as Error).message}`;
      }
      return `the item does not match item_schema: ${describe(validate.errors ?? [])}`;
    },
  };
}

function describe(errors: ErrorObject[]): string {
  return errors
    .slice(0, 3)
    .map((e) => `${e.instancePath || '(the item)'} ${e.message ?? 'is invalid'}`)
    .join('; ');
}
