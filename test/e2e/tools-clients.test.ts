/**
 * Function calling and structured outputs through three client frameworks,
 * unmodified, against the real server and models/mm-rec-tiny: LangChain JS
 * (ChatOpenAI: bindTools, withStructuredOutput), the Vercel AI SDK
 * (openai-compatible provider: generateText with tools and with
 * Output.object, streamText, generateObject) and LlamaIndex.TS (its OpenAI
 * LLM: chat, streamed chat, chat with a tool). Their schemas leave any model
 * finitely many outputs, so the tests hold for an untrained model too.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { ChatOpenAI } from '@langchain/openai';
import { tool as langchainTool } from '@langchain/core/tools';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateObject, generateText, Output, streamText, tool } from 'ai';
import { OpenAI as LlamaOpenAI } from '@llamaindex/openai';
import { FunctionTool } from '@llamaindex/core/tools';
import { MODEL, startServer, type ServerProcess } from './helpers.ts';

let server: ServerProcess;

before(async () => {
  server = await startServer();
});

after(async () => {
  assert.equal(await server.stop(), 0);
});

// z.int() writes minimum/maximum (the safe-integer range, or the bounds given).
const Mode = z.object({ mode: z.enum(['fast', 'slow', 'eco']), on: z.boolean(), level: z.int().min(1).max(3) });
const Verdict = z.object({ verdict: z.enum(['yes', 'no', 'maybe']), confident: z.boolean(), reasons: z.array(z.enum(['cost', 'time'])).max(2), score: z.int().min(0).max(10) });

function langchain(): ChatOpenAI {
  return new ChatOpenAI({ model: MODEL, apiKey: 'unused', configuration: { baseURL: `${server.url}/v1` }, temperature: 1, maxRetries: 0, maxTokens: 80 });
}

function vercel() {
  return createOpenAICompatible({ name: 'mmrec', baseURL: `${server.url}/v1`, apiKey: 'unused', supportsStructuredOutputs: true })(MODEL);
}

test('LangChain: bindTools gives a tool call with arguments valid against the tool schema', async () => {
  const setMode = langchainTool(async () => 'done', { name: 'set_mode', description: 'Set the device mode', schema: Mode });
  for (const tool_choice of ['set_mode', 'any']) {
    const message = await langchain().bindTools([setMode], { tool_choice }).invoke('Switch to eco mode.');
    assert.equal(message.tool_calls?.length, 1, `one call with tool_choice ${tool_choice}: ${JSON.stringify(message)}`);
    const call = message.tool_calls![0];
    assert.equal(call.name, 'set_mode');
    assert.ok(Mode.safeParse(call.args).success, JSON.stringify(call.args));
    assert.match(call.id!, /^call_/);
  }
});

test('LangChain: withStructuredOutput returns an object of the schema', async () => {
  for (const method of ['jsonSchema', 'functionCalling'] as const) {
    const out = await langchain().withStructuredOutput(Verdict, { name: 'verdict', method }).invoke('Should we go?');
    assert.ok(Verdict.safeParse(out).success, `${method}: ${JSON.stringify(out)}`);
  }
});

test('Vercel AI SDK: generateText with a tool runs it with valid input', async () => {
  const inputs: unknown[] = [];
  const result = await generateText({
    model: vercel(),
    prompt: 'Switch to slow mode.',
    tools: { set_mode: tool({ description: 'Set the device mode', inputSchema: Mode, execute: async (input) => (inputs.push(input), 'done') }) },
    toolChoice: { type: 'tool', toolName: 'set_mode' },
    maxOutputTokens: 80,
  });
  assert.equal(result.toolCalls.length, 1);
  assert.equal(result.toolCalls[0].toolName, 'set_mode');
  assert.ok(Mode.safeParse(result.toolCalls[0].input).success);
  assert.equal(inputs.length, 1);
  assert.equal(result.toolResults[0].output, 'done');
  assert.equal(result.finishReason, 'tool-calls');
});

test('Vercel AI SDK: streamText streams the tool input in pieces, then the call', async () => {
  const result = streamText({
    model: vercel(),
    prompt: 'Switch to fast mode.',
    tools: { set_mode: tool({ inputSchema: Mode }) },
    toolChoice: 'required',
    maxOutputTokens: 80,
  });
  const kinds: string[] = [];
  let input = '';
  for await (const part of result.fullStream) {
    kinds.push(part.type);
    if (part.type === 'tool-input-delta') input += part.delta;
    if (part.type === 'error') assert.fail(String(part.error));
  }
  assert.ok(kinds.indexOf('tool-input-start') < kinds.indexOf('tool-input-delta'), kinds.join(' '));
  assert.ok(kinds.filter((k) => k === 'tool-input-delta').length > 1, 'several input deltas');
  assert.ok(kinds.includes('tool-call'));
  assert.ok(Mode.safeParse(JSON.parse(input)).success, input);
  const calls = await result.toolCalls;
  assert.deepEqual(calls[0].input, JSON.parse(input));
});

test('Vercel AI SDK: generateObject returns an object of the schema', async () => {
  for (const seed of [1, 2]) {
    const { object, finishReason } = await generateObject({ model: vercel(), schema: Verdict, prompt: 'Should we go?', seed, temperature: 1, maxOutputTokens: 100 });
    assert.equal(finishReason, 'stop');
    assert.ok(Verdict.safeParse(object).success, JSON.stringify(object));
  }
});

test('Vercel AI SDK: generateText with Output.object (what replaces generateObject in ai 7) returns an object of the schema', async () => {
  for (const seed of [3, 4]) {
    const { output, finishReason } = await generateText({ model: vercel(), output: Output.object({ schema: Verdict }), prompt: 'Should we go?', seed, temperature: 1, maxOutputTokens: 100 });
    assert.equal(finishReason, 'stop');
    assert.ok(Verdict.safeParse(output).success, JSON.stringify(output));
  }
});

function llama(): LlamaOpenAI {
  return new LlamaOpenAI({ model: MODEL, apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0, maxTokens: 80, temperature: 0 });
}

test('LlamaIndex: chat and streamed chat give the same greedy reply', async () => {
  const messages = [{ role: 'user' as const, content: 'What is the capital of France?' }];
  const r = await llama().chat({ messages });
  assert.equal(typeof r.message.content, 'string');
  assert.ok((r.message.content as string).length > 0);
  let streamed = '';
  for await (const chunk of await llama().chat({ messages, stream: true })) streamed += chunk.delta;
  assert.equal(streamed, r.message.content);
});

test('LlamaIndex: chat with a tool gives a call with arguments valid against the tool schema', async () => {
  const setMode = FunctionTool.from(async () => 'done', { name: 'set_mode', description: 'Set the device mode', parameters: Mode });
  const r = await llama().chat({ messages: [{ role: 'user', content: 'Switch to eco mode.' }], tools: [setMode], additionalChatOptions: { tool_choice: 'required' } });
  const calls = (r.message.options as { toolCall?: Array<{ name: string; input: unknown; id: string }> }).toolCall;
  assert.equal(calls?.length, 1, JSON.stringify(r.message));
  assert.equal(calls![0].name, 'set_mode');
  const input = typeof calls![0].input === 'string' ? JSON.parse(calls![0].input) : calls![0].input;
  assert.ok(Mode.safeParse(input).success, JSON.stringify(input));
});
