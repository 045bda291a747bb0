package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/devtls"
)

func TestUpstreamCAFile(t *testing.T) {
	dir := t.TempDir()
	files, err := devtls.WriteFiles(dir)
	require.NoError(t, err)
	garbage := filepath.Join(dir, "garbage.pem")
	require.NoError(t, os.WriteFile(garbage, []byte("not a certificate"), 0o600))

	env := baseEnv()
	env["KEYWARD_UPSTREAM_CA_FILE"] = files.CA
	c, err := Load(MapEnv(env), "v1")
	require.NoError(t, err)
	pool := c.TLS.UpstreamRootCAs()
	require.NotNil(t, pool)

	c, err = Load(MapEnv(baseEnv()), "v1")
	require.NoError(t, err)
	require.Nil(t, c.TLS.UpstreamRootCAs(), "no extra CA: the system roots")

	for _, bad := range []string{filepath.Join(dir, "missing.pem"), garbage} {
		env["KEYWARD_UPSTREAM_CA_FILE"] = bad
		_, err = Load(MapEnv(env), "v1")
		require.ErrorContains(t, err, "KEYWARD_UPSTREAM_CA_FILE")
		require.ErrorContains(t, err, bad)
	}
}

func TestListenerCertificates(t *testing.T) {
	dir := t.TempDir()
	files, err := devtls.WriteFiles(dir)
	require.NoError(t, err)
	other, err := devtls.WriteFiles(filepath.Join(dir, "other"))
	require.NoError(t, err)

	env := baseEnv()
	env["KEYWARD_TLS_CERT_FILE"], env["KEYWARD_TLS_KEY_FILE"] = files.Cert, files.Key
	env["KEYWARD_METRICS_TLS_CERT_FILE"], env["KEYWARD_METRICS_TLS_KEY_FILE"] = files.Cert, files.Key
	c, err := Load(MapEnv(env), "v1")
	require.NoError(t, err)
	require.True(t, c.TLS.Enabled())
	require.True(t, c.TLS.MetricsEnabled())

	for name, mod := range map[string]func(map[string]string){
		"cert without key": func(e map[string]string) { delete(e, "KEYWARD_TLS_KEY_FILE") },
		"missing cert":     func(e map[string]string) { e["KEYWARD_TLS_CERT_FILE"] = filepath.Join(dir, "nope.pem") },
		"key of another":   func(e map[string]string) { e["KEYWARD_TLS_KEY_FILE"] = other.Key },
		"key as cert":      func(e map[string]string) { e["KEYWARD_TLS_CERT_FILE"] = files.Key },
	} {
		t.Run(name, func(t *testing.T) {
			e := baseEnv()
			e["KEYWARD_TLS_CERT_FILE"], e["KEYWARD_TLS_KEY_FILE"] = files.Cert, files.Key
			mod(e)
			_, err := Load(MapEnv(e), "v1")
			require.ErrorContains(t, err, "KEYWARD_TLS_")
		})
	}
	e := baseEnv()
	e["KEYWARD_METRICS_TLS_KEY_FILE"] = files.Key
	_, err = Load(MapEnv(e), "v1")
	require.ErrorContains(t, err, "KEYWARD_METRICS_TLS_CERT_FILE and KEYWARD_METRICS_TLS_KEY_FILE: set both or neither")
}
