package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func baseEnv() map[string]string {
	return map[string]string{"ANTHROPIC_API_KEY": "sk-ant-test-key"}
}

func TestDefaults(t *testing.T) {
	c, err := Load(MapEnv(baseEnv()), "v1")
	require.NoError(t, err)
	require.Equal(t, ":5001", c.Addr)
	require.Equal(t, ":9464", c.MetricsAddr)
	require.Equal(t, "https://api.anthropic.com", c.UpstreamURL)
	require.Equal(t, 300, c.Default.Requests.Rate)
	require.Equal(t, 60*time.Second, c.Default.Requests.Period)
	require.Equal(t, []string{"http://localhost:8501"}, c.CORSOrigins)
	require.Equal(t, "local", c.FailureMode)
	require.Equal(t, DefaultModels, c.AllowedModels)
	require.Len(t, c.Catalog, 4)
	require.False(t, c.UsingMock)
}

func TestFullYAMLAndEnvOverrides(t *testing.T) {
	env := baseEnv()
	env["KEYWARD_CONFIG"] = "testdata/full.yaml"
	c, err := Load(MapEnv(env), "v1")
	require.NoError(t, err)
	require.Equal(t, 20, c.Default.Requests.Rate)
	require.Equal(t, int64(100000), c.Default.TokensPerMinute)
	require.Equal(t, 200.0, c.Default.GlobalDailyUSD)
	require.Equal(t, "claude-haiku-4-5", c.DefaultModel)
	require.Equal(t, []string{"claude-sonnet-4-5", "claude-haiku-4-5"}, c.AllowedModels)
	pro := c.PolicyFor("pro")
	require.Equal(t, 300, pro.Requests.Rate)
	require.Equal(t, 50.0, pro.DailyBudgetUSD)
	require.Equal(t, int64(100000), pro.TokensPerMinute, "unset tier limits inherit the default")
	require.Equal(t, 200.0, pro.GlobalDailyUSD, "the global cap applies to every tier")
	require.Equal(t, 8, c.StreamCap("pro"))
	require.Equal(t, 3, c.StreamCap(""))
	require.Equal(t, 3, c.StreamCap("unknown-tier"))
	require.Equal(t, 20, c.PolicyFor("unknown-tier").Requests.Rate)
	require.Equal(t, 25.0, c.SpendAlertPerHour)
	_, ok := c.Prices.Lookup("my-private-model")
	require.True(t, ok)
	require.Len(t, c.Catalog, 2)
	prompt, err := c.Catalog["weekly_digest"].RenderWithData(map[string]any{"week": 12.0, "team": "growth"}, nil)
	require.NoError(t, err)
	require.Equal(t, "Summarise the week 12 for growth.", prompt, "a type without a data schema gets no data block")
	prompt, err = c.Catalog["tickets_by_plan"].RenderWithData(nil, map[string]any{"tickets": []any{
		map[string]any{"plan": "pro", "week_start": "2026-11-02", "tickets": 14.0},
	}})
	require.NoError(t, err)
	require.Contains(t, prompt, "<data name=\"tickets\" rows=\"1\">\nplan,week_start,tickets\npro,2026-11-02,14\n</data>")
	_, err = c.Catalog["tickets_by_plan"].RenderWithData(nil, nil)
	require.ErrorContains(t, err, "data.tickets is required", "an operator's required dataset is enforced")

	env["KEYWARD_RATE_LIMIT"] = "5/10s"
	env["KEYWARD_ALLOWED_MODELS"] = "claude-haiku-4-5"
	c, err = Load(MapEnv(env), "v1")
	require.NoError(t, err)
	require.Equal(t, 5, c.Default.Requests.Rate, "the contract env var wins over the YAML")
	require.Equal(t, []string{"claude-haiku-4-5"}, c.AllowedModels)
}

// TestBadFixtures: every testdata/*.bad.yaml fails, and every problem in it
// is reported at once.
func TestBadFixtures(t *testing.T) {
	want := map[string][]string{
		"unknown-key.bad.yaml": {"field requets not found"},
		"not-yaml.bad.yaml":    {"parsing KEYWARD_CONFIG"},
		"bad-values.bad.yaml": {
			"limits.requests \"thirty\"", "limits.daily_budget_usd must be ≥ 0", "tiers.pro.requests \"10/never\"",
			"prices.claude-sonnet-4-5", "analytics.Bad-Name", "analytics.broken_template.prompt", "analytics.bad_param.parameters.p",
			"analytics.bad_data.data.rows.max_items must be between 1 and 1000", "analytics.bad_data.data.rows.fields[0].max_length",
			`analytics.bad_data.data.rows.fields[1].type "timestamp"`, `analytics.bad_data.data.rows.fields[2].at_most: "label"`,
			`analytics.bad_data.data.rows.non_increasing: "label"`,
			"query_max_tokens must be between 1 and max_tokens_cap",
		},
		"unpriced.bad.yaml": {`allowed model "claude-opus-9-preview" has no price`, "prices.my-model: fast_multiplier"},
		"features.bad.yaml": {
			"features.default.default_max_uses must be ≥ 1", "features.default.max_uses must be ≥ 0", "features.default.server_tools: empty entry",
			"features.default.bounds.document_tokens must be ≥ 0", "features.tiers.pro: default_max_uses 30 is above max_uses 10",
			"features.tiers.ghost: no such tier",
		},
		"features-unknown-key.bad.yaml": {"field url_soruces not found"},
	}
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	require.Len(t, files, len(want))
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			env := baseEnv()
			env["KEYWARD_CONFIG"] = f
			_, err := Load(MapEnv(env), "v1")
			require.Error(t, err)
			for _, w := range want[filepath.Base(f)] {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestEnvProblemsReportedTogether(t *testing.T) {
	env := map[string]string{
		"KEYWARD_RATE_LIMIT":          "lots",
		"KEYWARD_REDIS_FAILURE_MODE":  "maybe",
		"KEYWARD_CORS_ORIGINS":        "*,https://ok.example,https://*.example.com",
		"KEYWARD_TRUSTED_PROXIES":     "10.0.0.0/33",
		"KEYWARD_AUTH_REQUIRED":       "true",
		"KEYWARD_JWT_SECRET":          "short",
		"KEYWARD_REDIS_URL":           "http://redis:6379",
		"KEYWARD_MAX_STREAM_DURATION": "forever",
		"KEYWARD_METRICS_ADDR":        ":5001",
	}
	_, err := Load(MapEnv(env), "v1")
	require.Error(t, err)
	for _, w := range []string{
		"no upstream key", "KEYWARD_RATE_LIMIT", "KEYWARD_REDIS_FAILURE_MODE", `"*" is not an exact`,
		`"https://*.example.com" is not an exact`, "KEYWARD_TRUSTED_PROXIES", "KEYWARD_JWT_SECRET is too short",
		"KEYWARD_REDIS_URL", "KEYWARD_MAX_STREAM_DURATION", "KEYWARD_METRICS_ADDR must differ",
	} {
		require.ErrorContains(t, err, w)
	}
	require.NotContains(t, err.Error(), "https://ok.example", "valid values are not reported")
}

func TestMockUpstreamOnlyWithoutKey(t *testing.T) {
	c, err := Load(MapEnv(map[string]string{"KEYWARD_MOCK_URL": "http://127.0.0.1:8090"}), "v1")
	require.NoError(t, err)
	require.True(t, c.UsingMock)
	require.Equal(t, "http://127.0.0.1:8090", c.UpstreamURL)
	require.Equal(t, "mock-key", c.MockAPIKey)

	c, err = Load(MapEnv(map[string]string{"KEYWARD_MOCK_URL": "http://127.0.0.1:8090", "ANTHROPIC_API_KEY": "sk-real"}), "v1")
	require.NoError(t, err)
	require.False(t, c.UsingMock, "a real key always wins over the mock")
	require.Equal(t, "https://api.anthropic.com", c.UpstreamURL)
}

func TestDotEnvIsAFallbackOnly(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".env"), []byte("KEYWARD_TEST_ONLY_A=from-file\nKEYWARD_TEST_ONLY_B=from-file\n"), 0o600))
	t.Setenv("KEYWARD_TEST_ONLY_B", "from-env")
	get, err := FromEnvironment(dir)
	require.NoError(t, err)
	a, _ := get("KEYWARD_TEST_ONLY_A")
	b, _ := get("KEYWARD_TEST_ONLY_B")
	require.Equal(t, "from-file", a)
	require.Equal(t, "from-env", b, "the process environment wins over .env")
}
