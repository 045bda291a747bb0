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

// TestBillHandComputed: every fee and multiplier, each figure worked out by
// hand from the cited prices (see DefaultPrices) and charged to the
// micro-dollar.
func TestBillHandComputed(t *testing.T) {
	prices := DefaultPrices()
	const M = 1_000_000
	k := Usage{InputTokens: 1000, OutputTokens: 1000}
	it := func(in, cr, out int64) IterationUsage {
		return IterationUsage{InputTokens: in, CacheReadInputTokens: cr, OutputTokens: out}
	}
	tests := []struct {
		name      string
		model     string
		usage     Usage
		ext       UsageExt
		want      float64
		long      bool
		bounded   bool
		wantSpeed float64
	}{
		// 1000·3 + 500·15 = 10,500 µ$ of tokens + 10 searches · $0.01.
		{"web search fee", "claude-sonnet-4-5", Usage{InputTokens: 1000, OutputTokens: 500},
			UsageExt{ServerToolUse: &ServerToolUse{WebSearchRequests: 10}}, 0.010500 + 0.100000, false, false, 1},
		{"web fetch is free beyond tokens", "claude-sonnet-4-5", Usage{InputTokens: 1000, OutputTokens: 500},
			UsageExt{ServerToolUse: &ServerToolUse{WebFetchRequests: 3}}, 0.010500, false, false, 1},
		// 2 · (5 min of $0.05/h) = $0.0083333.
		{"code execution at the container minimum", "claude-sonnet-4-5", Usage{InputTokens: 1000, OutputTokens: 500},
			UsageExt{ServerToolUse: &ServerToolUse{CodeExecutionRequests: 2}}, 0.010500 + 0.008333, false, false, 1},
		// 1000·5 + 1000·25 = 30,000 µ$; fast 6x = 180,000.
		{"fast opus 4.6 is 6x", "claude-opus-4-6", k, UsageExt{Speed: "fast"}, 0.180000, false, false, 6},
		{"fast opus 4.8 is 2x", "claude-opus-4-8", k, UsageExt{Speed: "fast"}, 0.060000, false, false, 2},
		{"standard speed is 1x", "claude-opus-4-8", k, UsageExt{Speed: "standard"}, 0.030000, false, false, 1},
		// 1000·4 + 1000·20 = 24,000 µ$, no documented multiplier: 6x.
		{"fast without a documented multiplier is bounded", "claude-opus-5-5", k, UsageExt{Speed: "fast"}, 0.144000, false, true, 6},
		{"inference_geo us is 1.1x", "claude-opus-4-6", k, UsageExt{InferenceGeo: "us"}, 0.033000, false, false, 1},
		{"inference_geo global is 1x", "claude-opus-4-6", k, UsageExt{InferenceGeo: "global"}, 0.030000, false, false, 1},
		{"an unknown geo errs high", "claude-opus-4-6", k, UsageExt{InferenceGeo: "eu"}, 0.033000, false, false, 1},
		{"fast and geo stack", "claude-opus-5", k, UsageExt{Speed: "fast", InferenceGeo: "us"}, 0.066000, false, false, 2},
		{"fees are not multiplied", "claude-opus-4-6", k,
			UsageExt{InferenceGeo: "us", ServerToolUse: &ServerToolUse{WebSearchRequests: 1}}, 0.033000 + 0.010000, false, false, 1},
		// 1M 1h writes on Sonnet 4.6: $6 · 1.1.
		{"geo applies to cache writes", "claude-sonnet-4-6", Usage{CacheCreationInputTokens: M, CacheCreation: &CacheCreation{Ephemeral1h: M}},
			UsageExt{InferenceGeo: "us"}, 6.600000, false, false, 1},
		{"geo applies to cache reads", "claude-sonnet-4-6", Usage{CacheReadInputTokens: M}, UsageExt{InferenceGeo: "us"}, 0.330000, false, false, 1},
		// Two iterations of 150k: each under 200k, so base rates
		// (2 · (150,000·3 + 100·15) = 903,000 µ$), although the sum is 300k.
		{"long context per iteration, not cumulative", "claude-sonnet-4-5", Usage{InputTokens: 300_000, OutputTokens: 200},
			UsageExt{Iterations: []IterationUsage{it(150_000, 0, 100), it(150_000, 0, 100)}}, 0.903000, false, false, 1},
		// Without iterations the same usage is one 300k prompt: 300,000·6 + 200·22.5.
		{"no iterations: the whole call", "claude-sonnet-4-5", Usage{InputTokens: 300_000, OutputTokens: 200}, UsageExt{}, 1.804500, true, false, 1},
		// Exactly 200,000 is long: 200,000·6 + 100·22.5 = 1,202,250 µ$.
		{"200k is long context", "claude-sonnet-4-5", Usage{InputTokens: 200_000, OutputTokens: 100},
			UsageExt{Iterations: []IterationUsage{it(200_000, 0, 100)}}, 1.202250, true, false, 1},
		// 199,999·3 + 100·15 = 601,497 µ$.
		{"199,999 is not", "claude-sonnet-4-5", Usage{InputTokens: 199_999, OutputTokens: 100},
			UsageExt{Iterations: []IterationUsage{it(199_999, 0, 100)}}, 0.601497, false, false, 1},
		// 250k·6 + 100·22.5 = 1,502,250 and 10k·3 + 100·15 = 31,500.
		{"one long iteration, one short", "claude-sonnet-4-5", Usage{InputTokens: 260_000, OutputTokens: 200},
			UsageExt{Iterations: []IterationUsage{it(250_000, 0, 100), it(10_000, 0, 100)}}, 1.533750, true, false, 1},
		// Cache reads count towards the threshold: 1000·6 + 199,000·0.60.
		{"cache reads count towards the threshold", "claude-sonnet-4-5", Usage{InputTokens: 1000, CacheReadInputTokens: 199_000},
			UsageExt{Iterations: []IterationUsage{it(1000, 199_000, 0)}}, 0.125400, true, false, 1},
		// Top level says 1,000 more input than the iterations: priced too
		// (at the whole call's tier, 3 $/MTok here): 451,500 + 3,000.
		{"tokens beyond the iterations are billed", "claude-sonnet-4-5", Usage{InputTokens: 151_000, OutputTokens: 100},
			UsageExt{Iterations: []IterationUsage{it(150_000, 0, 100)}}, 0.454500, false, false, 1},
		// Haiku 5.5: up to 100,000 at $0.10, above at $0.50.
		{"haiku 5.5 at 100,000", "claude-haiku-5-5", Usage{InputTokens: 100_000}, UsageExt{}, 0.010000, false, false, 1},
		{"haiku 5.5 at 100,001", "claude-haiku-5-5", Usage{InputTokens: 100_001}, UsageExt{}, 0.050001, true, false, 1},
		// Long context, fast and geo with a search, all at once, on Sonnet
		// 4.5 (no fast multiplier documented: 6x bound):
		// (200,000·6 + 1,000·22.5) · 6 · 1.1 + $0.01.
		{"everything", "claude-sonnet-4-5", Usage{InputTokens: 200_000, OutputTokens: 1000},
			UsageExt{Speed: "fast", InferenceGeo: "us", ServerToolUse: &ServerToolUse{WebSearchRequests: 1}}, 1.2225*6*1.1 + 0.01, true, true, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, ok := prices.Bill(tt.model, tt.usage, tt.ext)
			require.True(t, ok)
			require.InDelta(t, tt.want, b.TotalUSD(), 0.5e-6, "to the micro-dollar")
			require.Equal(t, tt.long, b.LongContext, "long context")
			require.Equal(t, tt.bounded, b.Bounded, "bounded")
			require.Equal(t, tt.wantSpeed, b.SpeedMultiplier)
		})
	}
}

func TestDefaultPricesValidate(t *testing.T) {
	for model, p := range DefaultPrices() {
		require.NoError(t, p.Validate(), model)
	}
	require.Error(t, Price{FastMultiplier: 0.5}.Validate())
	require.Error(t, Price{Input: -1}.Validate())
}
