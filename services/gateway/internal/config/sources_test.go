package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func writeYAML(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keyward.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

const sourcedYAML = `
analytics_sources:
  allow: ["http://metrics.internal:8080/analytics/"]
analytics:
  mrr_analysis:
    cache_ttl: 5m
    source: {url: "http://reader:pw-in-url@metrics.internal:8080/analytics/mrr?key=k-in-url", method: POST, timeout: 2s, max_bytes: 65536}
`

func TestAnalyticsSourceOnTheAllowlistLoads(t *testing.T) {
	env := baseEnv()
	env["KEYWARD_CONFIG"] = writeYAML(t, sourcedYAML)
	c, err := Load(MapEnv(env), "v1")
	require.NoError(t, err)
	s := c.Catalog["mrr_analysis"].Source
	require.NotNil(t, s)
	require.Equal(t, "POST", s.Method)
	require.Equal(t, int64(65536), s.MaxBytes)
	require.Equal(t, "2s", s.Timeout.String())
	require.Nil(t, c.Catalog["churn_analysis"], "the YAML catalog replaces the built-ins")
}

// TestAnalyticsSourceOffTheAllowlistRefusesToStart: a source outside the
// allowlist (or with none) is a start-up error that names the type and the
// allowlist, and never quotes the URL's credentials.
func TestAnalyticsSourceOffTheAllowlistRefusesToStart(t *testing.T) {
	env := baseEnv()
	env["KEYWARD_CONFIG"] = writeYAML(t, strings.Replace(sourcedYAML, "/analytics/\"]", "/other/\"]", 1))
	_, err := Load(MapEnv(env), "v1")
	require.ErrorContains(t, err, "analytics.mrr_analysis.source.url http://metrics.internal:8080/analytics/mrr is not under any prefix of analytics_sources.allow (allowed: http://metrics.internal:8080/other/)")
	require.NotContains(t, err.Error(), "pw-in-url")
	require.NotContains(t, err.Error(), "k-in-url")

	env["KEYWARD_CONFIG"] = writeYAML(t, "analytics:\n  mrr_analysis:\n    source: {url: \"http://metrics.internal:8080/analytics/mrr\"}\n")
	_, err = Load(MapEnv(env), "v1")
	require.ErrorContains(t, err, "is not under any prefix of analytics_sources.allow (none configured)")

	// The env var replaces the YAML's list.
	env["KEYWARD_ANALYTICS_SOURCES_ALLOW"] = "http://metrics.internal:8080/analytics/, https://other.internal/"
	c, err := Load(MapEnv(env), "v1")
	require.NoError(t, err)
	require.Equal(t, []string{"http://metrics.internal:8080/analytics/", "https://other.internal/"}, c.AnalyticsSources.Allow)
	env["KEYWARD_ANALYTICS_SOURCES_ALLOW"] = "https://u:p@x/"
	_, err = Load(MapEnv(env), "v1")
	require.ErrorContains(t, err, "KEYWARD_ANALYTICS_SOURCES_ALLOW[0]: a prefix is scheme://host[:port]/path, with no credentials or query")
}

func TestAnalyticsSourcesCAFile(t *testing.T) {
	env := baseEnv()
	env["KEYWARD_CONFIG"] = writeYAML(t, sourcedYAML)
	env["KEYWARD_ANALYTICS_SOURCES_CA_FILE"] = filepath.Join(t.TempDir(), "missing.pem")
	_, err := Load(MapEnv(env), "v1")
	require.ErrorContains(t, err, "KEYWARD_ANALYTICS_SOURCES_CA_FILE")
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("hello"), 0o600))
	env["KEYWARD_ANALYTICS_SOURCES_CA_FILE"] = notPEM
	_, err = Load(MapEnv(env), "v1")
	require.ErrorContains(t, err, "no PEM certificate in the file")
}
