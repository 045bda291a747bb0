// The Vercel AI SDK's Anthropic provider with its base URL set to the
// gateway (the provider appends /messages, so the base ends in /v1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAnthropic } from '@ai-sdk/anthropic';
import { generateText, streamText } from 'ai';
import { envFromProcess, mockAdmin } from './mockadmin.mjs';

const env = envFromProcess();
const mock = mockAdmin(env.mockURL);
const anthropic = createAnthropic({ baseURL: env.gatewayURL + '/v1', apiKey: env.apiKey });

test('generateText through the gateway', { timeout: 30_000 }, async () => {
  const { text, usage, finishReason } = await generateText({
    model: anthropic('claude-sonnet-4-5'),
    prompt: 'What is my MRR?',
    maxOutputTokens: 256,
  });
  assert.match(text, /What is my MRR\?/);
  assert.ok(usage.outputTokens > 0, JSON.stringify(usage));
  assert.equal(finishReason, 'stop');
});

test('streamText through the gateway', { timeout: 30_000 }, async () => {
  const result = streamText({
    model: anthropic('claude-haiku-4-5'),
    prompt: 'Stream it [[mock:output_tokens=40]]',
    maxOutputTokens: 256,
  });
  let streamed = '';
  for await (const part of result.textStream) streamed += part;
  assert.ok(streamed.length > 0);
  assert.equal(streamed, await result.text);
  assert.equal((await result.usage).outputTokens, 40);
});

test('an upstream 429 reaches the AI SDK as a retryable 429', { timeout: 30_000 }, async () => {
  await mock.reset();
  await assert.rejects(
    generateText({ model: anthropic('claude-sonnet-4-5'), prompt: 'x [[mock:status=429 retry_after=1]]', maxRetries: 0 }),
    (err) => {
      assert.equal(err.statusCode, 429, err.message);
      assert.equal(err.isRetryable, true);
      return true;
    },
  );
  assert.equal((await mock.stats()).by_path['/v1/messages'], 1, 'the gateway made one upstream attempt');
});
