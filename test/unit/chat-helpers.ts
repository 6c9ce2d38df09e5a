import { ChatTokenizer } from '../../src/chat/tokenizer.ts';
import { ChatTemplate } from '../../src/chat/template.ts';
import { DEFAULT_SPECIAL_TOKEN_IDS } from '../../src/chat/special-tokens.ts';

export const tokenizer = new ChatTokenizer({ encoding: 'cl100k_base', special_tokens: DEFAULT_SPECIAL_TOKEN_IDS });
export const template = new ChatTemplate(tokenizer);
