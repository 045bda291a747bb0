package anthropic_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/anthropic"
)

func TestDefaultModelTable(t *testing.T) {
	tab := anthropic.DefaultModelTable()
	for id, m := range tab {
		require.Equal(t, id, m.ID)
		require.NotEmpty(t, m.DisplayName, id)
		require.False(t, m.CreatedAt.IsZero(), id)
		require.Positive(t, m.MaxInputTokens, id)
		require.Positive(t, m.MaxTokens, id)
		_, priced := anthropic.DefaultPrices().Lookup(id)
		require.True(t, priced, "%s has a row but no price", id)
	}
	m, ok := tab.Lookup("claude-haiku-4-5-20251001")
	require.True(t, ok, "a dated id finds its undated row")
	require.Equal(t, int64(64_000), m.MaxTokens)
	_, ok = tab.Lookup("gpt-4o")
	require.False(t, ok)
}

func TestSortModelsNewestFirstThenByID(t *testing.T) {
	tab := anthropic.DefaultModelTable()
	ms := []anthropic.ModelInfo{tab["claude-sonnet-4-5"], tab["claude-opus-5-5"], tab["claude-haiku-5-5"], tab["claude-opus-4-8"]}
	anthropic.SortModels(ms)
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	require.Equal(t, []string{"claude-haiku-5-5", "claude-opus-5-5", "claude-opus-4-8", "claude-sonnet-4-5"}, ids)
}
