/**
 * Today's clients, as a new user runs them, on their Responses API defaults,
 * pointed at the real server and models/mm-rec-tiny: the OpenAI Agents SDK
 * (its default model is a Responses model) running an agent with one
 * function tool to completion; the Vercel AI SDK's @ai-sdk/openai provider
 * with its default `openai(id)` model (generateText with a tool, streamText);
 * LangChain's ChatOpenAI with useResponsesApi, and its createAgent with a
 * "openai:<model>" string configured only by OPENAI_BASE_URL / OPENAI_API_KEY.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { Agent, OpenAIProvider, Runner, tool as agentTool } from '@openai/agents';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, stepCountIs, streamText, tool } from 'ai';
import { ChatOpenAI } from '@langchain/openai';
import { tool as langchainTool } from '@langchain/core/tools';
import { createAgent } from 'langchain';
import { MODEL, startServer, type ServerProcess } from './helpers.ts';

let server: ServerProcess;

before(async () => {
  server = await startServer();
});

after(async () => {
  assert.equal(await server.stop(), 0);
});

const weather = (city: string) => JSON.stringify({ city, temperature_c: 18, condition: 'sunny' });

/** The requests a client made to /v1/responses, from the server's access log. */
function responsesRequests(): number {
  return server.logs.filter((l) => l.msg === 'request' && l.url === '/v1/responses').length;
}

/** Whether at least `n` such requests are logged (the log arrives on the server's stdout a moment after the response). */
async function loggedResponses(n: number): Promise<boolean> {
  for (let i = 0; i < 100 && responsesRequests() < n; i++) await new Promise((r) => setTimeout(r, 20));
  return responsesRequests() >= n;
}

test('OpenAI Agents SDK: its default (Responses) model runs an agent with a function tool to completion', async () => {
  const before = responsesRequests();
  const calls: string[] = [];
  const getWeather = agentTool({
    name: 'get_weather',
    description: 'Get the current weather in a city',
    parameters: z.object({ city: z.string() }),
    execute: async ({ city }) => {
      calls.push(city);
      return weather(city);
    },
  });
  const agent = new Agent({ name: 'Weather', instructions: 'You are a helpful assistant.', model: MODEL, tools: [getWeather], modelSettings: { temperature: 0, maxTokens: 80 } });
  const runner = new Runner({ modelProvider: new OpenAIProvider({ baseURL: `${server.url}/v1`, apiKey: 'unused' }), tracingDisabled: true });
  const result = await runner.run(agent, "What's the weather in Paris?", { maxTurns: 4 });
  assert.equal(calls.length, 1, `the tool ran once: ${JSON.stringify(result.newItems.map((i) => i.type))}`);
  assert.equal(typeof result.finalOutput, 'string');
  assert.ok((result.finalOutput as string).length > 0, 'a final answer after the tool result');
  assert.ok(await loggedResponses(before + 2), 'it spoke the Responses API');
});

test('Vercel AI SDK: the default openai(id) model, generateText with a tool and streamText', async () => {
  const openai = createOpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused' });
  const before = responsesRequests();
  const inputs: unknown[] = [];
  const result = await generateText({
    model: openai(MODEL),
    prompt: "What's the weather in Paris?",
    tools: { get_weather: tool({ description: 'Get the current weather in a city', inputSchema: z.object({ city: z.string() }), execute: async ({ city }) => (inputs.push(city), weather(city)) }) },
    stopWhen: stepCountIs(3),
    maxOutputTokens: 80,
  });
  assert.equal(inputs.length, 1, JSON.stringify(result.steps.map((s) => s.finishReason)));
  assert.equal(result.steps[0].toolCalls[0].toolName, 'get_weather');
  assert.ok(result.text.length > 0, 'a final answer after the tool result');
  assert.ok(await loggedResponses(before + 2), 'the default model speaks the Responses API');

  const stream = streamText({ model: openai(MODEL), prompt: 'Hi, my name is Alice.', temperature: 0, maxOutputTokens: 40 });
  const kinds = new Set<string>();
  let text = '';
  for await (const part of stream.fullStream) {
    kinds.add(part.type);
    if (part.type === 'text-delta') text += part.text;
    if (part.type === 'error') assert.fail(String(part.error));
  }
  assert.ok(text.length > 0);
  assert.equal(await stream.text, text);
  assert.ok(kinds.has('finish'));
});

test('LangChain: ChatOpenAI with useResponsesApi, plain and with a bound tool', async () => {
  const model = new ChatOpenAI({ model: MODEL, apiKey: 'unused', configuration: { baseURL: `${server.url}/v1` }, useResponsesApi: true, temperature: 0, maxRetries: 0, maxTokens: 60 });
  const before = responsesRequests();
  const plain = await model.invoke('Hi, my name is Alice.');
  assert.ok(typeof plain.text === 'string' && plain.text.length > 0, JSON.stringify(plain.content));
  const getWeather = langchainTool(async ({ city }: { city: string }) => weather(city), { name: 'get_weather', description: 'Get the current weather in a city', schema: z.object({ city: z.string() }) });
  const message = await model.bindTools([getWeather], { tool_choice: 'get_weather' }).invoke("What's the weather in Paris?");
  assert.equal(message.tool_calls?.length, 1, JSON.stringify(message));
  assert.equal(message.tool_calls![0].name, 'get_weather');
  assert.equal(typeof message.tool_calls![0].args.city, 'string');
  assert.ok(await loggedResponses(before + 2), 'useResponsesApi speaks the Responses API');
});

test('LangChain: createAgent with a "openai:…" model string, configured by the environment, runs a tool to completion', async () => {
  const saved = { base: process.env.OPENAI_BASE_URL, key: process.env.OPENAI_API_KEY };
  process.env.OPENAI_BASE_URL = `${server.url}/v1`;
  process.env.OPENAI_API_KEY = 'unused';
  try {
    const before = responsesRequests();
    const calls: string[] = [];
    const getWeather = langchainTool(async ({ city }: { city: string }) => (calls.push(city), weather(city)), { name: 'get_weather', description: 'Get the current weather in a city', schema: z.object({ city: z.string() }) });
    const agent = createAgent({ model: `openai:${MODEL}`, tools: [getWeather] });
    const result = await agent.invoke({ messages: [{ role: 'user', content: "What's the weather in Paris?" }] }, { recursionLimit: 8 });
    assert.equal(calls.length, 1, `the tool ran once: ${JSON.stringify(result.messages.map((m) => m.getType()))}`);
    const last = result.messages.at(-1)!;
    assert.equal(last.getType(), 'ai');
    assert.ok(last.text.length > 0, 'a final answer after the tool result');
    assert.ok(await loggedResponses(before + 2), 'createAgent speaks the Responses API');
  } finally {
    if (saved.base === undefined) delete process.env.OPENAI_BASE_URL;
    else process.env.OPENAI_BASE_URL = saved.base;
    if (saved.key === undefined) delete process.env.OPENAI_API_KEY;
    else process.env.OPENAI_API_KEY = saved.key;
  }
});
