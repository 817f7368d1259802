// openai_client.test.mjs: the official OpenAI Node client (npm `openai`) against a
// running `ignis serve`: chat, completions, streaming, models and errors.
// Usage: node openai_client.test.mjs NPM_DIR BASE_URL API_KEY
// (test_openai_client.sh starts the server and runs this). Exits non-zero on a failure.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const [npmDir, baseURL, apiKey] = process.argv.slice(2);
const require = createRequire(`${npmDir}/package.json`);
const OpenAI = require('openai');
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });
const bad = new OpenAI({ baseURL, apiKey: 'wrong-key', maxRetries: 0, timeout: 20000 });

let passed = 0, failed = 0;
async function test(name, fn) {
    try {
        await fn();
        passed++;
    } catch (e) {
        failed++;
        console.log(`FAIL: ${name}: ${e && e.stack ? e.stack : e}`);
    }
}

async function expectError(fn, status, cls, param) {
    let err = null;
    try { await fn(); } catch (e) { err = e; }
    assert.ok(err, 'no error was raised');
    assert.ok(err instanceof OpenAI.APIError, `not an APIError: ${err}`);
    assert.equal(err.status, status);
    if (cls) assert.ok(err instanceof cls, `${err.constructor.name} is not ${cls.name}`);
    if (param !== undefined) assert.equal(err.param, param);
    assert.ok(err.message.length > 0);
    assert.ok(err.headers && (err.headers.get ? err.headers.get('x-request-id') : err.headers['x-request-id']));
    return err;
}

await test('models.list', async () => {
    const page = await client.models.list();
    const ids = [];
    for await (const m of page) ids.push(m.id);
    assert.deepEqual(ids, ['stories260K']);
});

await test('models.retrieve', async () => {
    const m = await client.models.retrieve('stories260K');
    assert.equal(m.id, 'stories260K');
    assert.equal(m.object, 'model');
});

await test('completions.create (greedy, llama.cpp reference text)', async () => {
    const r = await client.completions.create({
        model: 'stories260K', prompt: 'Once upon a time', max_tokens: 12, temperature: 0,
    });
    assert.equal(r.object, 'text_completion');
    assert.ok(', there was a little girl named Lily. She loved to play'.startsWith(r.choices[0].text));
    assert.ok(r.choices[0].text.length > 20);
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, 12);
});

await test('chat.completions.create', async () => {
    const r = await client.chat.completions.create({
        model: 'stories260K',
        messages: [{ role: 'system', content: 'You tell stories.' }, { role: 'user', content: 'Once upon a time' }],
        max_completion_tokens: 8, seed: 3, temperature: 0.7, logprobs: true, top_logprobs: 3,
    });
    assert.equal(r.object, 'chat.completion');
    assert.ok(r.id.startsWith('chatcmpl-'));
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(typeof r.choices[0].message.content, 'string');
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.choices[0].logprobs.content.length, 8);
    assert.equal(r.choices[0].logprobs.content[0].top_logprobs.length, 3);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 8);
});

await test('chat stream with usage', async () => {
    const stream = await client.chat.completions.create({
        messages: [{ role: 'user', content: 'Tell me a story' }], max_tokens: 10, stream: true,
        stream_options: { include_usage: true },
    });
    let text = '', finish = null, usage = null, n = 0, role = null;
    for await (const chunk of stream) {
        n++;
        assert.equal(chunk.object, 'chat.completion.chunk');
        if (chunk.usage) usage = chunk.usage;
        for (const c of chunk.choices) {
            if (c.delta.role) role = c.delta.role;
            if (c.delta.content) text += c.delta.content;
            if (c.finish_reason) finish = c.finish_reason;
        }
    }
    assert.equal(role, 'assistant');
    assert.ok(n >= 3);
    assert.equal(finish, 'length');
    assert.equal(usage.completion_tokens, 10);
    assert.ok(text.length > 0);
});

await test('completion stream, stop string', async () => {
    const stream = await client.completions.create({
        prompt: 'Once upon a time', max_tokens: 40, temperature: 0, stop: [' girl'], stream: true,
    });
    let text = '', finish = null;
    for await (const chunk of stream)
        for (const c of chunk.choices) {
            text += c.text;
            if (c.finish_reason) finish = c.finish_reason;
        }
    assert.equal(text, ', there was a little');
    assert.equal(finish, 'stop');
});

await test('stream helper: finalChatCompletion', async () => {
    const runner = client.chat.completions.stream({
        messages: [{ role: 'user', content: 'hi' }], max_tokens: 5,
    });
    const final = await runner.finalChatCompletion();
    assert.equal(final.choices[0].message.role, 'assistant');
    assert.equal(final.choices[0].finish_reason, 'length');
});

await test('error: unknown model is NotFoundError', async () => {
    await expectError(() => client.chat.completions.create({
        model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }), 404, OpenAI.NotFoundError, 'model');
});

await test('error: bad key is AuthenticationError', async () => {
    await expectError(() => bad.models.list(), 401, OpenAI.AuthenticationError);
});

await test('error: out-of-range temperature is BadRequestError naming it', async () => {
    await expectError(() => client.completions.create({ prompt: 'x', temperature: 9 }), 400,
        OpenAI.BadRequestError, 'temperature');
});

await test('error: empty messages', async () => {
    await expectError(() => client.chat.completions.create({ messages: [] }), 400,
        OpenAI.BadRequestError, 'messages');
});

await test('error: context exceeded', async () => {
    const e = await expectError(() => client.completions.create({ prompt: 'x', max_tokens: 100000 }),
        400, OpenAI.BadRequestError, 'max_tokens');
    assert.equal(e.code, 'context_length_exceeded');
});

await test('the server is still up', async () => {
    const m = await client.models.retrieve('stories260K');
    assert.equal(m.id, 'stories260K');
});

console.log(`openai_client: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
