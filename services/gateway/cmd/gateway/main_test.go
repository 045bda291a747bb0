package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
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

// `gateway token --helper` is what a Claude Code apiKeyHelper runs: stdout
// is the token alone, short-lived, with the developer as sub and the tier.
func TestTokenForAPIKeyHelper(t *testing.T) {
	secret := strings.Repeat("h", 32)
	code, out, errOut := runIn(t, map[string]string{"KEYWARD_JWT_SECRET": secret}, "token", "--helper", "--sub", "dev-alice", "--tier", "pro")
	require.Equal(t, 0, code, errOut)
	require.Empty(t, errOut)
	tok := strings.TrimSuffix(out, "\n")
	require.NotContains(t, tok, "\n", "one line: the token only")
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var claims struct {
		Sub  string `json:"sub"`
		Tier string `json:"tier"`
		Iat  int64  `json:"iat"`
		Exp  int64  `json:"exp"`
	}
	require.NoError(t, json.Unmarshal(raw, &claims))
	require.Equal(t, "dev-alice", claims.Sub)
	require.Equal(t, "pro", claims.Tier)
	require.Equal(t, int64(15*60), claims.Exp-claims.Iat, "15 minutes by default with --helper")

	code, out, _ = runIn(t, map[string]string{"KEYWARD_JWT_SECRET": secret}, "token", "--helper", "--sub", "dev-alice", "--ttl", "2m")
	require.Equal(t, 0, code)
	raw, _ = base64.RawURLEncoding.DecodeString(strings.Split(strings.TrimSpace(out), ".")[1])
	require.NoError(t, json.Unmarshal(raw, &claims))
	require.Equal(t, int64(120), claims.Exp-claims.Iat)

	code, _, errOut = runIn(t, map[string]string{"KEYWARD_JWT_SECRET": secret}, "token", "--sub", "x", "--ttl", "-1m")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--ttl must be between")
}
