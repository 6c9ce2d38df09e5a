/** How deeply a JSON text nests, checked without parsing it (a parse, or JSON.stringify of the result, would recurse). */

/** The default limit on nesting: request bodies, tool-call arguments. */
export const DEFAULT_MAX_JSON_DEPTH = 64;

/**
 * The deepest nesting of `[` and `{` in a JSON text, found by one scan that
 * skips strings; stops counting once `limit` is exceeded. Works on invalid JSON
 * too (the parser reports that), and never recurses.
 */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

