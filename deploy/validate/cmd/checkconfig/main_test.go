package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const rendered = `apiVersion: v1
kind: ConfigMap
metadata: {name: kw}
data:
  config.yaml: |
    limits: {daily_budget_usd: 5}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: kw}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      volumes:
        - name: config
          configMap: {name: kw}
      containers:
        - name: gateway
          image: x
          resources: {limits: {memory: 256Mi}}
          env:
            - {name: KEYWARD_RATE_LIMIT, value: 30/60s}
            - {name: KEYWARD_CONFIG, value: /etc/keyward/config.yaml}
            - {name: ANTHROPIC_API_KEY_FILE, value: /var/run/secrets/keyward/anthropic/api-key}
            - name: GOMEMLIMIT
              valueFrom: {resourceFieldRef: {containerName: gateway, resource: limits.memory, divisor: "1"}}
`

func TestEnvironment(t *testing.T) {
	p, err := parse(strings.NewReader(rendered))
	require.NoError(t, err)
	dir := t.TempDir()
	env, err := environment(p, dir)
	require.NoError(t, err)
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	require.Equal(t, "30/60s", m["KEYWARD_RATE_LIMIT"])
	require.Equal(t, "268435456", m["GOMEMLIMIT"], "what the kubelet writes for 256Mi with divisor 1")
	cfg, err := os.ReadFile(m["KEYWARD_CONFIG"])
	require.NoError(t, err)
	require.Equal(t, "limits: {daily_budget_usd: 5}\n", string(cfg))
	require.True(t, strings.HasPrefix(m["KEYWARD_CONFIG"], filepath.Join(dir, "pod")))
	key, err := os.ReadFile(m["ANTHROPIC_API_KEY_FILE"])
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(key), "sk-ant-"))
}

func TestParseAndEnvironmentRefuseBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, in, wantErr string
	}{
		{"no gateway", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "no Deployment with a gateway container"},
		{"secret as env", strings.Replace(rendered, "- {name: KEYWARD_RATE_LIMIT, value: 30/60s}",
			"- {name: ANTHROPIC_API_KEY, valueFrom: {secretKeyRef: {name: s, key: k}}}", 1), "would put a secret in the environment"},
		{"missing ConfigMap", strings.Replace(rendered, "configMap: {name: kw}", "configMap: {name: other}", 1), "not rendered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parse(strings.NewReader(tc.in))
			if err == nil {
				_, err = environment(p, t.TempDir())
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestStandInRefusesUnknownMounts(t *testing.T) {
	err := standIn("KEYWARD_SOMETHING_FILE", filepath.Join(t.TempDir(), "x"), "")
	require.ErrorContains(t, err, "no stand-in")
}

func TestRedact(t *testing.T) {
	got := redact([]string{"ANTHROPIC_API_KEY=sk-ant-secret", "ANTHROPIC_API_KEY=", "KEYWARD_RATE_LIMIT=30/60s"})
	require.Equal(t, []string{"ANTHROPIC_API_KEY=<redacted>", "ANTHROPIC_API_KEY=", "KEYWARD_RATE_LIMIT=30/60s"}, got)
}
