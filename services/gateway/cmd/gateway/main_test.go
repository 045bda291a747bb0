package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func runIn(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	t.Chdir(t.TempDir()) // no stray .env
	for _, k := range []string{"ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY_FILE", "KEYWARD_MOCK_URL", "KEYWARD_JWT_SECRET", "KEYWARD_CONFIG"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheckConfigReportsEveryProblemAtOnce(t *testing.T) {
	code, out, _ := runIn(t, map[string]string{"ANTHROPIC_API_KEY": "sk-ant-x"}, "--check-config")
	require.Equal(t, 0, code)
	require.Contains(t, out, "configuration OK")

	code, _, errOut := runIn(t, map[string]string{"KEYWARD_RATE_LIMIT": "lots", "KEYWARD_CORS_ORIGINS": "*"}, "--check-config")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "no upstream key")
	require.Contains(t, errOut, "KEYWARD_RATE_LIMIT")
	require.Contains(t, errOut, `"*" is not an exact`)
}

func TestDotEnvInTheWorkingDirectory(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".env"), []byte("ANTHROPIC_API_KEY=sk-ant-from-dotenv\n"), 0o600))
	t.Chdir(dir)
	os.Unsetenv("ANTHROPIC_API_KEY")
	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"--check-config"}, &out, &errb), errb.String())
	require.NotContains(t, out.String()+errb.String(), "sk-ant-from-dotenv", "the key is never printed")
}

func TestTokenCommand(t *testing.T) {
	code, _, errOut := runIn(t, nil, "token", "--sub", "alice")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "KEYWARD_JWT_SECRET")

	code, _, errOut = runIn(t, map[string]string{"KEYWARD_JWT_SECRET": strings.Repeat("s", 32)}, "token")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--sub is required")

	code, out, _ := runIn(t, map[string]string{"KEYWARD_JWT_SECRET": strings.Repeat("s", 32)}, "token", "--sub", "alice", "--ttl", "5m", "--tier", "pro")
	require.Equal(t, 0, code)
	require.Equal(t, 3, len(strings.Split(strings.TrimSpace(out), ".")), "a compact JWT")
}

func TestVersionAndUnknownArguments(t *testing.T) {
	code, out, _ := runIn(t, nil, "version")
	require.Equal(t, 0, code)
	require.Equal(t, version+"\n", out)
	code, _, errOut := runIn(t, nil, "--frobnicate")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "unknown argument")
	code, _, _ = runIn(t, nil, "healthcheck", "http://127.0.0.1:1/health")
	require.Equal(t, 1, code, "nothing listens there")
}
