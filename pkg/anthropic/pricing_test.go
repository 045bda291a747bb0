package anthropic

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCostEachKind(t *testing.T) {
	prices := DefaultPrices()
	const M = 1_000_000
	tests := []struct {
		name  string
		model string
		usage Usage
		want  float64
	}{
		{"input", "claude-sonnet-4-6", Usage{InputTokens: M}, 3},
		{"output", "claude-sonnet-4-6", Usage{OutputTokens: M}, 15},
		{"cache read", "claude-sonnet-4-6", Usage{CacheReadInputTokens: M}, 0.30},
		{"cache write without breakdown is 5m", "claude-sonnet-4-6", Usage{CacheCreationInputTokens: M}, 3.75},
		{"cache write 1h breakdown", "claude-sonnet-4-6", Usage{CacheCreationInputTokens: M, CacheCreation: &CacheCreation{Ephemeral1h: M}}, 6},
		{"mixed breakdown", "claude-sonnet-4-6", Usage{CacheCreationInputTokens: 2 * M, CacheCreation: &CacheCreation{Ephemeral5m: M, Ephemeral1h: M}}, 3.75 + 6},
		{"all-zero breakdown is treated as absent", "claude-sonnet-4-6", Usage{CacheCreationInputTokens: M, CacheCreation: &CacheCreation{}}, 3.75},
		{"breakdown short of the total: rest as 5m", "claude-sonnet-4-6", Usage{CacheCreationInputTokens: 3 * M, CacheCreation: &CacheCreation{Ephemeral1h: M}}, 6 + 2*3.75},
		// 410 in, 585 out on Sonnet 4.5: 410·3 + 585·15 = 10,005 micro-dollars.
		{"docs response", "claude-sonnet-4-5-20250929", Usage{InputTokens: 410, OutputTokens: 585}, 0.010005},
		{"everything at once", "claude-haiku-4-5", Usage{InputTokens: 1000, OutputTokens: 2000, CacheReadInputTokens: 30000, CacheCreationInputTokens: 500, CacheCreation: &CacheCreation{Ephemeral5m: 200, Ephemeral1h: 300}},
			(1000*1 + 2000*5 + 30000*0.10 + 200*1.25 + 300*2) / 1e6},
		{"opus 4.8", "claude-opus-4-8", Usage{InputTokens: 100, OutputTokens: 100}, (100*5 + 100*25) / 1e6},
		{"sonnet 5.5 read at 0.10", "claude-sonnet-5-5", Usage{CacheReadInputTokens: M}, 0.10},
		{"haiku 5.5 short prompt", "claude-haiku-5-5", Usage{InputTokens: 100_000, OutputTokens: M}, 0.01 + 0.50},
		{"haiku 5.5 long prompt", "claude-haiku-5-5", Usage{InputTokens: 90_000, CacheReadInputTokens: 20_000, OutputTokens: M}, 0.045 + 0.001 + 2.50},
		{"sonnet 4.5 over 200k", "claude-sonnet-4-5", Usage{InputTokens: 250_000, OutputTokens: 1000}, 1.5 + 0.0225},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := prices.Cost(tt.model, tt.usage)
			require.True(t, ok)
			require.InDelta(t, tt.want, got, 1e-9, "to the micro-dollar and well below")
		})
	}
}

func TestUnknownModelIsNeverPriced(t *testing.T) {
	prices := DefaultPrices()
	for _, m := range []string{"claude-unknown-9", "", "gpt-4o", "claude-sonnet-4-5-2025", "claude-sonnet-4-5-2025092x", "-20250929"} {
		usd, ok := prices.Cost(m, Usage{InputTokens: 1000, OutputTokens: 1000})
		require.False(t, ok, m)
		require.Zero(t, usd, m)
	}
}

func TestLookup(t *testing.T) {
	prices := DefaultPrices()
	tests := []struct {
		id   string
		want float64 // input price
	}{
		{"claude-sonnet-4-5", 3},
		{"claude-sonnet-4-5-20250929", 3},
		{"claude-sonnet-4-5@20250929", 3},
		{"claude-opus-4-1-20250805", 15},
		{"claude-opus-4-20250514", 15},
		{"claude-sonnet-4-20250514", 3},
		{"claude-3-5-haiku-20241022", 0.80},
		{"claude-3-5-haiku-latest", 0.80},
		{"claude-haiku-4-5-20251001", 1},
		{"claude-opus-4-5-20251101", 5},
		{"claude-sonnet-5", 2},
		{"claude-mythos-5", 10},
	}
	for _, tt := range tests {
		p, ok := prices.Lookup(tt.id)
		require.True(t, ok, tt.id)
		require.Equal(t, tt.want, p.Input, tt.id)
	}
}

func TestDefaultPricesAreValid(t *testing.T) {
	for model, p := range DefaultPrices() {
		require.NoError(t, p.Validate(), model)
		require.Positive(t, p.Input, model)
		require.Positive(t, p.Output, model)
		require.Greater(t, p.CacheWrite5m, p.Input, "%s: cache writes cost more than input", model)
		require.Less(t, p.CacheRead, p.Input, "%s: cache reads cost less than input", model)
	}
}

func TestPriceValidate(t *testing.T) {
	require.ErrorContains(t, Price{Input: -1}.Validate(), "input")
	require.ErrorContains(t, Price{Input: 1, LongContext: &Price{Output: -2}}.Validate(), "threshold")
	err := Price{Input: 1, LongContext: &Price{Output: -2}, LongContextThreshold: 10}.Validate()
	require.ErrorContains(t, err, "long context: output")
}

func TestMergeOverridesWithoutMutating(t *testing.T) {
	base := DefaultPrices()
	merged := base.Merge(PriceTable{"claude-sonnet-4-5": {Input: 9, Output: 9}, "my-finetune": {Input: 1, Output: 2}})
	require.Equal(t, 9.0, merged["claude-sonnet-4-5"].Input)
	require.Equal(t, 3.0, base["claude-sonnet-4-5"].Input)
	_, ok := merged.Lookup("my-finetune")
	require.True(t, ok)
}

func TestReserveCostIsAnUpperBound(t *testing.T) {
	prices := DefaultPrices()
	reserve, ok := prices.ReserveCost("claude-sonnet-4-5", 10_000, 1_000)
	require.True(t, ok)
	// Whatever mix of input, cache writes and reads the call turns out to
	// have, the real cost stays at or below the reservation.
	for _, u := range []Usage{
		{InputTokens: 10_000, OutputTokens: 1_000},
		{CacheCreationInputTokens: 10_000, OutputTokens: 1_000},
		{CacheCreationInputTokens: 10_000, CacheCreation: &CacheCreation{Ephemeral1h: 10_000}, OutputTokens: 1_000},
		{CacheReadInputTokens: 10_000, OutputTokens: 1_000},
	} {
		cost, _ := prices.Cost("claude-sonnet-4-5", u)
		require.LessOrEqual(t, cost, reserve)
	}
	_, ok = prices.ReserveCost("nope", 1, 1)
	require.False(t, ok)
	long, _ := prices.ReserveCost("claude-sonnet-4-5", 300_000, 0)
	require.InDelta(t, 300_000*12/1e6, long, 1e-9, "over 200k the long-context tier applies")
}
