/**
 * The special tokens of the MM-Rec chat format (MM-REC.md §4).
 *
 * cl100k_base already owns `<|endoftext|>` (100257); the role and tool tokens
 * live in its unused id range 100261–100275. The ids below are the defaults the
 * model kit writes into `config.json`; at run time the ids always come from the
 * served model's config, never from this table.
 */
export const SPECIAL_TOKEN_NAMES = {
  endOfText: '<|endoftext|>',
  system: '<|system|>',
  user: '<|user|>',
  assistant: '<|assistant|>',
  tool: '<|tool|>',
  tools: '<|tools|>',
  toolCall: '<|tool_call|>',
} as const;

export type SpecialTokenKey = keyof typeof SPECIAL_TOKEN_NAMES;

export const DEFAULT_SPECIAL_TOKEN_IDS: Record<string, number> = {
  '<|endoftext|>': 100257,
  '<|system|>': 100261,
  '<|user|>': 100262,
  '<|assistant|>': 100263,
  '<|tool|>': 100264,
  '<|tools|>': 100265,
  '<|tool_call|>': 100266,
};

/** cl100k_base's ids run to 100276 (`<|endofprompt|>`), so the model's vocabulary is 100277. */
export const DEFAULT_VOCAB_SIZE = 100277;
