// The mock upstream's admin API (/_mock/*), for cases that count what
// reached the upstream. Node only: it has no CORS.
export function mockAdmin(url) {
  const call = async (path, body) => {
    const res = await fetch(url + path, body === undefined ? {} : {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`mock ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  return {
    reset: () => call('/_mock/reset', {}),
    faults: (queue) => call('/_mock/faults', { queue }),
    config: (cfg) => call('/_mock/config', cfg),
    stats: () => call('/_mock/stats'),
    requests: async () => (await call('/_mock/requests')).requests,
  };
}

export function envFromProcess() {
  const need = (k) => {
    const v = process.env[k];
    if (!v) throw new Error(`${k} is not set: run these tests through the Go driver (make test-clients)`);
    return v;
  };
  return {
    gatewayURL: need('KEYWARD_TEST_GATEWAY_URL'),
    mockURL: need('KEYWARD_TEST_MOCK_URL'),
    apiKey: process.env.KEYWARD_TEST_API_KEY || 'anything-the-sdk-insists-on',
    allowedModels: need('KEYWARD_TEST_ALLOWED_MODELS').split(','),
  };
}
