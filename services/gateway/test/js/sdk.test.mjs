// The official TypeScript SDK in Node, against the gateway in front of the
// mock upstream. Run by the Go driver (clients_test.go).
import { test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { cases } from './suite.mjs';
import { envFromProcess, mockAdmin } from './mockadmin.mjs';

const env = envFromProcess();
for (const [name, fn] of cases({ ...env, Anthropic, browser: false, mock: mockAdmin(env.mockURL) })) {
  test(name, { timeout: 30_000 }, fn);
}
