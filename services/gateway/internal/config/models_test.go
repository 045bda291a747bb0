package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// By default each model's ceiling is its own maximum output, so Claude
// Code's max_tokens of 32000 passes; the operator's cap only lowers it.
func TestMaxTokensDefaultsToEachModelsMaximum(t *testing.T) {
	c, err := Load(MapEnv(baseEnv()), "v1")
	require.NoError(t, err)
	require.Equal(t, int64(64_000), c.MaxTokensFor("claude-sonnet-4-5"))
	require.Equal(t, int64(64_000), c.MaxTokensFor("claude-sonnet-4-5-20250929"), "dated ids find their row")
	require.Equal(t, int64(128_000), c.MaxTokensFor("claude-opus-5-5"))
	require.Equal(t, int64(0), c.MaxTokensFor("some-unknown-model"), "no ceiling known: the upstream judges")
	require.Equal(t, 16, c.StreamCap(""))

	env := baseEnv()
	env["KEYWARD_CONFIG"] = "testdata/full.yaml" // max_tokens_cap: 4096
	c, err = Load(MapEnv(env), "v1")
	require.NoError(t, err)
	require.Equal(t, int64(4096), c.MaxTokensFor("claude-sonnet-4-5"))
	require.Equal(t, int64(4096), c.MaxTokensFor("some-unknown-model"))
}

func TestModelAliasesAndTableOverrides(t *testing.T) {
	env := baseEnv()
	env["KEYWARD_CONFIG"] = "testdata/models.yaml"
	c, err := Load(MapEnv(env), "v1")
	require.NoError(t, err)
	require.Equal(t, "claude-sonnet-4-5", c.ResolveModel("sonnet"))
	require.Equal(t, "claude-opus-4-8", c.ResolveModel("claude-opus-4-8"), "a non-alias stays as sent")
	require.Equal(t, int64(32000), c.MaxTokensFor("claude-haiku-4-5"), "a table row corrects a known model")
	require.Equal(t, int64(4000), c.MaxTokensFor("my-private-model"))

	listed := c.ListedModels()
	ids := make([]string, len(listed))
	for i, m := range listed {
		ids[i] = m.ID
	}
	require.Equal(t, []string{"my-private-model", "claude-haiku-4-5", "claude-haiku-latest-fast", "claude-sonnet-4-5", "sonnet"}, ids,
		"allowed models and aliases, newest first, ties by id")
	m, ok := c.ListedModel("sonnet")
	require.True(t, ok)
	require.Equal(t, "Claude Sonnet 4.5", m.DisplayName)
	require.Equal(t, int64(200_000), m.MaxInputTokens)
	p, ok := c.ListedModel("my-private-model")
	require.True(t, ok)
	require.Equal(t, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), p.CreatedAt)
	_, ok = c.ListedModel("claude-opus-4-8")
	require.False(t, ok, "a model outside the allowlist is not listed")
}

func TestModelConfigProblemsReportedTogether(t *testing.T) {
	env := baseEnv()
	env["KEYWARD_CONFIG"] = "testdata/models-problems.yaml"
	_, err := Load(MapEnv(env), "v1")
	require.Error(t, err)
	for _, want := range []string{
		`models.aliases.sonnet: target "claude-opus-4-8" is not in the allowed models`,
		"models.aliases.claude-sonnet-4-5: the name is also an allowed model id",
		"models.table.unknown-model: max_tokens (the model's maximum output) is required",
		`models.table.claude-sonnet-4-5.created_at "last tuesday"`,
	} {
		require.ErrorContains(t, err, want)
	}
}
