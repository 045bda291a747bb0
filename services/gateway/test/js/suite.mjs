// The TypeScript SDK suite, shared by Node (sdk.test.mjs) and headless
// Chromium (browser.mjs): each case gets a client whose only change is the
// base URL (the gateway) and returns normally or throws.
//
// env: { Anthropic, gatewayURL, apiKey, browser, mock }
//   mock is null in the browser (the mock's admin API has no CORS); cases
//   that count upstream calls check them only where it is set.

const MODEL = 'claude-sonnet-4-5';

// A 1x1 PNG, for the image case.
const PNG_1X1 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

function check(cond, msg) {
  if (!cond) throw new Error('check failed: ' + msg);
}

function eq(got, want, msg) {
  if (got !== want) throw new Error(`${msg}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

async function rejects(promise, msg) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected an error: ' + msg);
}

const text = (msg) => msg.content.filter((b) => b.type === 'text').map((b) => b.text).join('');

function user(content) {
  return { model: MODEL, max_tokens: 256, messages: [{ role: 'user', content }] };
}

export function cases(env) {
  const { Anthropic } = env;
  const client = (opts = {}) =>
    new Anthropic({
      apiKey: env.apiKey,
      baseURL: env.gatewayURL,
      dangerouslyAllowBrowser: env.browser,
      timeout: 20_000,
      ...opts,
    });

  const all = [
    ['messages.create answers through the gateway', async () => {
      const msg = await client().messages.create(user('What is my MRR?'));
      eq(msg.type, 'message', 'type');
      eq(msg.role, 'assistant', 'role');
      check(text(msg).includes('What is my MRR?'), 'the mock quotes the prompt: ' + text(msg));
      check(msg.usage.output_tokens > 0, 'usage.output_tokens');
      eq(msg.stop_reason, 'end_turn', 'stop_reason');
    }],

    ['withResponse exposes the upstream request-id', async () => {
      const { data, response, request_id } = await client().messages.create(user('hello')).withResponse();
      check(data.id.startsWith('msg_'), 'message id');
      check(String(request_id).startsWith('req_'), 'request_id from the upstream: ' + request_id);
      eq(response.headers.get('request-id'), request_id, 'request-id header');
    }],

    ['a system prompt and a multi-turn conversation', async () => {
      const msg = await client().messages.create({
        model: MODEL,
        max_tokens: 128,
        system: [{ type: 'text', text: 'You are terse.', cache_control: { type: 'ephemeral' } }],
        messages: [
          { role: 'user', content: 'first question' },
          { role: 'assistant', content: 'first answer' },
          { role: 'user', content: 'second question' },
        ],
      });
      check(text(msg).includes('second question'), 'the last user turn arrived');
    }],

    ['tools and a tool_result round trip', async () => {
      const tools = [{
        name: 'get_weather',
        description: 'Weather for a city',
        input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
      }];
      const msg = await client().messages.create({
        model: MODEL,
        max_tokens: 256,
        tools,
        tool_choice: { type: 'auto' },
        messages: [
          { role: 'user', content: 'Weather in Paris?' },
          { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: { city: 'Paris' } }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: '18°C and sunny' }] },
        ],
      });
      eq(msg.type, 'message', 'type');
      check(msg.content.length > 0, 'content');
      if (env.mock) {
        const reqs = await env.mock.requests();
        const last = JSON.parse(reqs[reqs.length - 1].body);
        eq(last.tools[0].name, 'get_weather', 'tools forwarded unchanged');
        eq(last.messages[2].content[0].tool_use_id, 'toolu_01', 'tool_result forwarded');
      }
    }],

    ['a tool_use answer, streamed with input_json_delta and in JSON', async () => {
      const tools = [{
        name: 'get_weather',
        description: 'Weather for a city',
        input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
      }];
      const req = { model: MODEL, max_tokens: 256, tools, messages: [{ role: 'user', content: 'Weather? [[mock:tool_use=get_weather]]' }] };
      const stream = client().messages.stream(req);
      let jsonDeltas = 0;
      stream.on('inputJson', () => { jsonDeltas++; });
      const final = await stream.finalMessage();
      eq(final.stop_reason, 'tool_use', 'stop_reason');
      const use = final.content.find((b) => b.type === 'tool_use');
      check(use, 'a tool_use block: ' + JSON.stringify(final.content));
      eq(use.name, 'get_weather', 'tool name');
      check(use.id.startsWith('toolu_'), 'tool_use id');
      check(typeof use.input === 'object' && use.input !== null, 'input parsed from the deltas');
      check(jsonDeltas > 0, 'input_json_delta events');
      const msg = await client().messages.create(req);
      eq(msg.stop_reason, 'tool_use', 'stop_reason (JSON)');
      eq(msg.content.find((b) => b.type === 'tool_use')?.name, 'get_weather', 'tool_use (JSON)');
    }],

    ['an image block', async () => {
      const msg = await client().messages.create({
        model: MODEL,
        max_tokens: 128,
        messages: [{
          role: 'user',
          content: [
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG_1X1 } },
            { type: 'text', text: 'Describe the image' },
          ],
        }],
      });
      check(msg.usage.input_tokens > 0, 'input tokens billed for the image turn');
    }],

    ['messages.stream with finalMessage and text events', async () => {
      const stream = client().messages.stream(user('Stream it [[mock:usage_deltas=3 output_tokens=90]]'));
      let deltas = '';
      stream.on('text', (t) => { deltas += t; });
      const final = await stream.finalMessage();
      eq(final.usage.output_tokens, 90, 'final cumulative output tokens');
      eq(final.stop_reason, 'end_turn', 'stop_reason');
      eq(deltas, text(final), 'the text events add up to the final message');
    }],

    ['create with stream: true iterates raw events', async () => {
      const stream = await client().messages.create({ ...user('raw events'), stream: true });
      const types = [];
      for await (const ev of stream) types.push(ev.type);
      eq(types[0], 'message_start', 'first event');
      eq(types[types.length - 1], 'message_stop', 'last event');
      check(types.includes('content_block_delta'), 'deltas');
    }],

    ['countTokens', async () => {
      const n = await client().messages.countTokens({
        model: MODEL,
        messages: [{ role: 'user', content: 'a'.repeat(400) }],
      });
      check(n.input_tokens > 0, 'input_tokens: ' + JSON.stringify(n));
    }],

    ['models.list paginates with limit, after_id and has_more', async () => {
      const c = client();
      const first = await c.models.list({ limit: 2 });
      eq(first.data.length, 2, 'page size');
      eq(first.has_more, true, 'has_more');
      eq(first.first_id, first.data[0].id, 'first_id');
      eq(first.last_id, first.data[1].id, 'last_id');
      const ids = [];
      for await (const m of c.models.list({ limit: 2 })) ids.push(m.id);
      eq(new Set(ids).size, ids.length, 'auto-pagination visits every model once');
      eq(ids.length, env.allowedModels.length, 'every allowed model, nothing else');
      for (const id of env.allowedModels) check(ids.includes(id), 'listed: ' + id);
      const second = await first.getNextPage();
      eq(second.data[0].id, ids[2], 'the next page starts after last_id');
      const back = await c.models.list({ limit: 2, before_id: second.data[0].id });
      eq(back.data.map((m) => m.id).join(), first.data.map((m) => m.id).join(), 'before_id goes back');
    }],

    ['models.retrieve, and NotFoundError for a model the gateway does not allow', async () => {
      const c = client();
      const m = await c.models.retrieve(MODEL);
      eq(m.id, MODEL, 'id');
      eq(m.type, 'model', 'type');
      eq(m.display_name, 'Claude Sonnet 4.5', 'display_name');
      eq(m.max_input_tokens, 200000, 'max_input_tokens');
      eq(m.max_tokens, 64000, 'max_tokens');
      check(!Number.isNaN(Date.parse(m.created_at)), 'created_at');
      const err = await rejects(c.models.retrieve('claude-opus-4-8'), 'a model outside the allowlist');
      check(err instanceof Anthropic.NotFoundError, 'NotFoundError, got ' + err?.constructor?.name);
      eq(err.status, 404, 'status');
      check(typeof err.requestID === 'string' && err.requestID.length > 0, 'requestID on a gateway-written error');
    }],

    ['typed errors: a refused model is a BadRequestError with requestID', async () => {
      const err = await rejects(client().messages.create({ ...user('x'), model: 'claude-opus-4-8' }), 'a model outside the allowlist');
      check(err instanceof Anthropic.BadRequestError, 'BadRequestError, got ' + err?.constructor?.name);
      eq(err.error?.error?.type, 'invalid_request_error', 'error.type');
      check(/not allowed/.test(err.message), 'message: ' + err.message);
      check(err.requestID, 'requestID');
    }],

    ['typed errors: an upstream 400 passes through with its wording and request-id', async () => {
      const err = await rejects(client().messages.create(user('x [[mock:status=400]]')), 'upstream 400');
      check(err instanceof Anthropic.BadRequestError, 'BadRequestError, got ' + err?.constructor?.name);
      check(String(err.requestID).startsWith('req_'), 'the upstream request-id: ' + err.requestID);
    }],

    ['RateLimitError honours retry-after and is retried by the SDK', async () => {
      // The first attempt gets the upstream's 429 with retry-after: 1, passed
      // through; the SDK waits and its retry succeeds.
      const t0 = Date.now();
      const msg = await client({ maxRetries: 0 })
        .messages.create(user('x [[mock:status=429 retry_after=1]]'))
        .catch((e) => e);
      check(msg instanceof Anthropic.RateLimitError, 'RateLimitError, got ' + msg?.constructor?.name + ' ' + msg?.message);
      eq(msg.status, 429, 'status');
      eq(msg.headers.get('retry-after'), '1', 'retry-after');
      eq(msg.headers.get('x-should-retry'), 'true', 'x-should-retry');
      check(String(msg.requestID).startsWith('req_'), 'requestID');
      if (env.mock) {
        await env.mock.reset();
        await env.mock.faults([{ status: 429, retry_after: 1 }]);
        const t1 = Date.now();
        const ok = await client({ maxRetries: 2 }).messages.create(user('after a wait'));
        check(Date.now() - t1 >= 900, 'the SDK waited for retry-after: ' + (Date.now() - t1) + 'ms');
        eq(ok.type, 'message', 'the retry succeeded');
        const byPath = (await env.mock.stats()).by_path;
        eq(byPath['/v1/messages'], 2, 'one 429 and one success upstream: no gateway retry');
      }
      check(Date.now() - t0 < 15_000, 'bounded');
    }],

    // Counts the mock's calls, so only where its admin API is reachable.
    env.mock && ['an always-529 upstream: one SDK call, at most 3 upstream calls', async () => {
      await env.mock.reset();
      await env.mock.config({ status: 529 });
      try {
        const err = await rejects(client().messages.create(user('overloaded')), 'always 529');
        check(err instanceof Anthropic.InternalServerError, 'InternalServerError for a 529, got ' + err?.constructor?.name);
        eq(err.status, 529, 'status');
        eq(err.error?.error?.type, 'overloaded_error', 'error.type');
        check(String(err.requestID).startsWith('req_'), 'requestID');
        eq((await env.mock.stats()).by_path['/v1/messages'], 3, "the SDK's own 3 attempts, no gateway retries on top");
      } finally {
        await env.mock.config({});
      }
    }],

    ['abort cancels the stream and the upstream call', async () => {
      const c = client({ maxRetries: 0 });
      const before = env.mock ? (await env.mock.stats()).cancelled : 0;
      const ac = new AbortController();
      const stream = c.messages.stream(user('long [[mock:event_delay_ms=50 output_tokens=3000]]'), { signal: ac.signal });
      let got = 0;
      const err = await (async () => {
        try {
          for await (const ev of stream) {
            if (ev.type === 'content_block_delta' && ++got === 3) ac.abort();
          }
        } catch (e) {
          return e;
        }
        return null;
      })();
      check(got >= 3, 'events arrived before the abort');
      check(err instanceof Anthropic.APIUserAbortError || stream.aborted, 'aborted: ' + err);
      if (env.mock) {
        const deadline = Date.now() + 5000;
        while ((await env.mock.stats()).cancelled <= before) {
          check(Date.now() < deadline, 'the mock saw the upstream call cancelled');
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }],
  ];
  return all.filter(Boolean);
}
