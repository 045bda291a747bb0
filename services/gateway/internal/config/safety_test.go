package config

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSafetyDefaults(t *testing.T) {
	c, err := Load(MapEnv(baseEnv()), "v1")
	require.NoError(t, err)
	require.Equal(t, DefaultMaxInflightPerAddress, c.Safety.MaxInflightPerAddress)
	require.Less(t, c.Safety.MaxInflightPerAddress, c.MaxInflight)
	require.Equal(t, DefaultBodyTimeout, c.Safety.BodyTimeout)
	require.Equal(t, int64(DefaultBodyMinBytesPerSecond), c.Safety.BodyMinRate)
	require.Equal(t, 60*time.Second, c.Safety.MaxRetryAfter)
	require.Empty(t, c.Safety.Warnings)
}

func TestSafetyYAMLAndEnv(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k.yaml")
	require.NoError(t, os.WriteFile(path, []byte("limits:\n  max_inflight: 100\n  max_inflight_per_address: 10\n  body_timeout: 2s\n  body_min_bytes_per_second: 4096\n  max_retry_after: 30s\n"), 0o600))
	env := baseEnv()
	env["KEYWARD_CONFIG"] = path
	c, err := Load(MapEnv(env), "v1")
	require.NoError(t, err)
	require.Equal(t, 10, c.Safety.MaxInflightPerAddress)
	require.Equal(t, 2*time.Second, c.Safety.BodyTimeout)
	require.Equal(t, int64(4096), c.Safety.BodyMinRate)
	require.Equal(t, 30*time.Second, c.Safety.MaxRetryAfter)

	env["KEYWARD_MAX_RETRY_AFTER"] = "15s"
	c, err = Load(MapEnv(env), "v1")
	require.NoError(t, err)
	require.Equal(t, 15*time.Second, c.Safety.MaxRetryAfter, "the env var wins over the YAML")
}

func TestSafetyRefusals(t *testing.T) {
	dir := t.TempDir()
	n := 0
	yaml := func(body string) string {
		n++
		p := filepath.Join(dir, fmt.Sprintf("c%d.yaml", n))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	loose := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(loose, []byte("sk-ant-file-key"), 0o644))
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"cleartext upstream", map[string]string{"KEYWARD_UPSTREAM_URL": "http://api.example.com"}, "KEYWARD_UPSTREAM_URL http://api.example.com is cleartext http to a non-loopback host"},
		{"catch-all v4 proxies", map[string]string{"KEYWARD_TRUSTED_PROXIES": "0.0.0.0/0"}, "KEYWARD_TRUSTED_PROXIES: 0.0.0.0/0 is a catch-all"},
		{"catch-all v6 proxies", map[string]string{"KEYWARD_TRUSTED_PROXIES": "10.0.0.0/8,::/0"}, "KEYWARD_TRUSTED_PROXIES: ::/0 is a catch-all"},
		{"half the Internet", map[string]string{"KEYWARD_TRUSTED_PROXIES": "128.0.0.0/1"}, "128.0.0.0/1 is a catch-all"},
		{"mapped v4 catch-all", map[string]string{"KEYWARD_TRUSTED_PROXIES": "::ffff:0.0.0.0/96"}, "is a catch-all"},
		{"world-readable key, strict", map[string]string{"ANTHROPIC_API_KEY": "", "ANTHROPIC_API_KEY_FILE": loose, "KEYWARD_STRICT_FILE_PERMISSIONS": "true"}, "has mode 0644: readable or writable by group or others"},
		{"per-address cap not below the global one", map[string]string{"KEYWARD_CONFIG": yaml("limits:\n  max_inflight: 8\n  max_inflight_per_address: 8\n")}, "limits.max_inflight_per_address (8) must be below limits.max_inflight (8)"},
		{"bad body timeout", map[string]string{"KEYWARD_CONFIG": yaml("limits:\n  body_timeout: soon\n")}, `limits.body_timeout "soon"`},
		{"per-tier safety key", map[string]string{"KEYWARD_CONFIG": yaml("tiers:\n  pro:\n    body_timeout: 1s\n")}, "tiers.pro: max_inflight_per_address"},
		{"retry-after cap below a second", map[string]string{"KEYWARD_MAX_RETRY_AFTER": "500ms"}, "must be at least 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := baseEnv()
			for k, v := range tc.env {
				env[k] = v
			}
			_, err := Load(MapEnv(env), "v1")
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestSafetyAllowedButWarned(t *testing.T) {
	dir := t.TempDir()
	loose := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(loose, []byte("sk-ant-file-key"), 0o640))
	env := map[string]string{
		"ANTHROPIC_API_KEY_FILE":          loose,
		"KEYWARD_UPSTREAM_URL":            "http://egress.internal:8080",
		"KEYWARD_ALLOW_INSECURE_UPSTREAM": "true",
		"KEYWARD_TRUSTED_PROXIES":         "10.0.0.0/8,fd00::/8",
	}
	c, err := Load(MapEnv(env), "v1")
	require.NoError(t, err)
	require.Len(t, c.Safety.Warnings, 2)
	require.Contains(t, c.Safety.Warnings[0], "cleartext http")
	require.Contains(t, c.Safety.Warnings[1], "has mode 0640")

	// Loopback cleartext (the mock, a TLS-originating sidecar) and the
	// offline mock are fine without the flag.
	for _, e := range []map[string]string{
		{"ANTHROPIC_API_KEY": "k", "KEYWARD_UPSTREAM_URL": "http://127.0.0.2:8090"},
		{"ANTHROPIC_API_KEY": "k", "KEYWARD_UPSTREAM_URL": "http://localhost:8090"},
		{"KEYWARD_MOCK_URL": "http://mockanthropic:8090"},
	} {
		c, err := Load(MapEnv(e), "v1")
		require.NoError(t, err, "%v", e)
		require.Empty(t, c.Safety.Warnings)
	}
}
