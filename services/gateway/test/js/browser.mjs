// The SDK suite in a browser page: bundled by esbuild into one script, run
// by headless Chromium from an origin the gateway allows (CORS), results
// POSTed back to the page's own server (the Go driver).
import Anthropic from '@anthropic-ai/sdk';
import { cases } from './suite.mjs';

const env = window.KEYWARD_TEST_ENV;

async function run() {
  const results = [];
  for (const [name, fn] of cases({ ...env, Anthropic, browser: true, mock: null })) {
    const t0 = performance.now();
    try {
      await fn();
      results.push({ name, ok: true, ms: Math.round(performance.now() - t0) });
    } catch (err) {
      results.push({ name, ok: false, error: String(err?.stack || err) });
    }
  }
  await fetch('/results', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(results) });
}

run().catch((err) =>
  fetch('/results', { method: 'POST', body: JSON.stringify([{ name: 'suite', ok: false, error: String(err) }]) }));
