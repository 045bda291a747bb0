package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/anthropic"
)

func TestDefaultAllowedModelsArePriced(t *testing.T) {
	prices := anthropic.DefaultPrices()
	for _, m := range DefaultModels {
		_, ok := prices.Lookup(m)
		require.True(t, ok, "default allowed model %s has no price", m)
	}
}

// TestUnpricedAllowedModelRefusesToStart: --check-config runs Load, so this
// is what it reports.
func TestUnpricedAllowedModelRefusesToStart(t *testing.T) {
	env := baseEnv()
	env["KEYWARD_ALLOWED_MODELS"] = "claude-haiku-4-5,claude-haiku-4-5-20251001,claude-free-lunch"
	_, err := Load(MapEnv(env), "v1")
	require.ErrorContains(t, err, `allowed model "claude-free-lunch" has no price`)
	require.NotContains(t, err.Error(), `"claude-haiku-4-5`, "priced models, dated or not, are not reported")

	env["KEYWARD_CONFIG"] = "testdata/features.yaml"
	env["KEYWARD_ALLOWED_MODELS"] = "my-model,claude-free-lunch"
	_, err = Load(MapEnv(env), "v1")
	require.ErrorContains(t, err, `allowed model "claude-free-lunch" has no price`)
	require.Equal(t, 1, strings.Count(err.Error(), "has no price"), "a model priced in the YAML is accepted: %v", err)
}

func TestFeaturePolicyYAML(t *testing.T) {
	env := baseEnv()
	env["KEYWARD_CONFIG"] = "testdata/features.yaml"
	c, err := Load(MapEnv(env), "v1")
	require.NoError(t, err)

	def := c.FeaturePolicy("")
	require.True(t, def.RequireMaxUses)
	require.Equal(t, int64(200_000), def.Bounds.DocumentTokens)
	require.Equal(t, anthropic.DefaultFeatureBounds().WebSearchTokens, def.Bounds.WebSearchTokens, "unset bounds keep the built-in value")
	require.True(t, def.URLSources)
	require.Equal(t, def, c.FeaturePolicy("unknown-tier"), "a tier without a policy gets the default")

	free := c.FeaturePolicy("free")
	require.False(t, free.URLSources)
	require.False(t, free.FileSources)
	require.False(t, free.FastMode)
	require.Empty(t, free.ServerTools)
	require.Empty(t, free.Betas)
	require.Equal(t, []string{"global"}, free.InferenceGeos)
	require.True(t, free.RequireMaxUses, "tiers inherit the YAML default")

	pro := c.FeaturePolicy("pro")
	require.True(t, pro.MCPServers)
	require.Equal(t, int64(50), pro.MaxUses)
	require.Equal(t, int64(40_000), pro.Bounds.WebSearchTokens)
	require.Equal(t, int64(200_000), pro.Bounds.DocumentTokens)

	p, ok := c.Prices.Lookup("my-model")
	require.True(t, ok)
	require.Equal(t, 3.0, p.FastMultiplier)
	require.NotNil(t, p.LongContext)
	require.Equal(t, int64(100_000), p.LongContextThreshold)
	require.Equal(t, 10.0, p.LongContext.Output)
}

func TestFeaturePolicyWithoutYAML(t *testing.T) {
	c, err := Load(MapEnv(baseEnv()), "v1")
	require.NoError(t, err)
	require.Equal(t, anthropic.DefaultFeaturePolicy(), c.FeaturePolicy(""))
	require.Equal(t, anthropic.DefaultFeaturePolicy(), c.FeaturePolicy("pro"))
}
