package anthropic

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Price is USD per million tokens for each kind of token.
type Price struct {
	Input        float64
	CacheWrite5m float64
	CacheWrite1h float64
	CacheRead    float64
	Output       float64

	// LongContext, when set, replaces the prices above for a request whose
	// total input (input + cache writes + cache reads) exceeds
	// LongContextThreshold tokens.
	LongContext          *Price
	LongContextThreshold int64
}

// Validate rejects negative or non-finite prices and an incomplete
// long-context tier.
func (p Price) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    float64
	}{{"input", p.Input}, {"cache_write_5m", p.CacheWrite5m}, {"cache_write_1h", p.CacheWrite1h}, {"cache_read", p.CacheRead}, {"output", p.Output}} {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			errs = append(errs, fmt.Errorf("%s: must be a non-negative number", f.name))
		}
	}
	if p.LongContext != nil {
		if p.LongContextThreshold <= 0 {
			errs = append(errs, errors.New("long context: threshold must be positive"))
		}
		if p.LongContext.LongContext != nil {
			errs = append(errs, errors.New("long context: cannot nest"))
		}
		if err := p.LongContext.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("long context: %w", err))
		}
	}
	return errors.Join(errs...)
}

// PriceTable maps model ids (undated aliases, such as "claude-sonnet-4-5")
// to prices.
type PriceTable map[string]Price

// DefaultPrices is the built-in table. Rows marked verified come from
// Anthropic's pricing page as captured on 2026-09-01; the others come from
// model-overview excerpts and price trackers (Sep–Oct 2026) and must be
// checked before being relied on. Operators override or extend it with the
// "prices" section of KEYWARD_CONFIG.
func DefaultPrices() PriceTable {
	opus45 := Price{Input: 5, CacheWrite5m: 6.25, CacheWrite1h: 10, CacheRead: 0.50, Output: 25}
	opus4 := Price{Input: 15, CacheWrite5m: 18.75, CacheWrite1h: 30, CacheRead: 1.50, Output: 75}
	sonnet4 := Price{Input: 3, CacheWrite5m: 3.75, CacheWrite1h: 6, CacheRead: 0.30, Output: 15}
	// Sonnet 4 and 4.5 take prompts over 200k tokens only with the 1M-context
	// beta, at a premium [unverified: 2025 pricing page, from memory of it;
	// not in the 2026 capture].
	sonnet4Long := sonnet4
	sonnet4Long.LongContext = &Price{Input: 6, CacheWrite5m: 7.50, CacheWrite1h: 12, CacheRead: 0.60, Output: 22.50}
	sonnet4Long.LongContextThreshold = 200_000
	haiku45 := Price{Input: 1, CacheWrite5m: 1.25, CacheWrite1h: 2, CacheRead: 0.10, Output: 5}
	haiku35 := Price{Input: 0.80, CacheWrite5m: 1, CacheWrite1h: 1.60, CacheRead: 0.08, Output: 4}
	sonnet5 := Price{Input: 2, CacheWrite5m: 2.50, CacheWrite1h: 4, CacheRead: 0.20, Output: 10}
	fable5 := Price{Input: 10, CacheWrite5m: 12.50, CacheWrite1h: 20, CacheRead: 1, Output: 50}

	return PriceTable{
		// Verified (pricing page, 2026-09-01).
		"claude-opus-4-8":   opus45,
		"claude-opus-4-7":   opus45,
		"claude-opus-4-6":   opus45,
		"claude-opus-4-5":   opus45,
		"claude-opus-4-1":   opus4, // retired except on Bedrock/Vertex
		"claude-opus-4":     opus4, // claude-opus-4-20250514
		"claude-opus-4-0":   opus4,
		"claude-sonnet-4-6": sonnet4,
		"claude-sonnet-4-5": sonnet4Long,
		"claude-sonnet-4":   sonnet4Long, // claude-sonnet-4-20250514
		"claude-sonnet-4-0": sonnet4Long,
		"claude-haiku-4-5":  haiku45,
		"claude-3-5-haiku":  haiku35, // claude-3-5-haiku-20241022, retired except on Bedrock/Vertex
		"claude-opus-5":     opus45,
		"claude-sonnet-5":   sonnet5, // the launch price became standard
		"claude-fable-5":    fable5,
		"claude-mythos-5":   fable5,

		// Unverified (model-overview excerpts and price trackers).
		"claude-opus-5-5": {Input: 4, CacheWrite5m: 5, CacheWrite1h: 8, CacheRead: 0.20, Output: 20},
		// Cache reads were cut from 0.20 to 0.10 on 2026-10-07.
		"claude-sonnet-5-5": {Input: 2, CacheWrite5m: 2.50, CacheWrite1h: 4, CacheRead: 0.10, Output: 10},
		// Priced by prompt length: up to 100k tokens, then the higher tier.
		"claude-haiku-5-5": {
			Input: 0.10, CacheWrite5m: 0.125, CacheWrite1h: 0.20, CacheRead: 0.01, Output: 0.50,
			LongContext:          &Price{Input: 0.50, CacheWrite5m: 0.625, CacheWrite1h: 1, CacheRead: 0.05, Output: 2.50},
			LongContextThreshold: 100_000,
		},
		// The price is on the official page; the ids and the cache-write
		// prices (the usual 1.25x and 2x of input) are not.
		"claude-fable-5-1":  {Input: 10, CacheWrite5m: 12.50, CacheWrite1h: 20, CacheRead: 0.25, Output: 50},
		"claude-mythos-5-1": {Input: 10, CacheWrite5m: 12.50, CacheWrite1h: 20, CacheRead: 0.25, Output: 50},
	}
}

// Merge returns a copy of t with over's entries added or replacing t's.
func (t PriceTable) Merge(over PriceTable) PriceTable {
	out := make(PriceTable, len(t)+len(over))
	for k, v := range t {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

// Lookup finds the price of a model id: the exact id, else the id without
// a date suffix ("claude-sonnet-4-5-20250929" and the Vertex form
// "claude-sonnet-4-5@20250929" → "claude-sonnet-4-5") or "-latest".
func (t PriceTable) Lookup(model string) (Price, bool) {
	if p, ok := t[model]; ok {
		return p, true
	}
	if base, ok := undated(model); ok {
		p, ok := t[base]
		return p, ok
	}
	return Price{}, false
}

func undated(model string) (string, bool) {
	if base, ok := strings.CutSuffix(model, "-latest"); ok {
		return base, base != ""
	}
	i := strings.LastIndexAny(model, "-@")
	if i <= 0 || len(model)-i-1 != 8 {
		return "", false
	}
	for _, c := range model[i+1:] {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	return model[:i], true
}

// Cost prices one call's usage in USD. Cache writes use the 5m/1h breakdown
// when the upstream sent one; otherwise all of cache_creation_input_tokens is
// priced as 5-minute writes (the docs' rule). A model without a price returns
// (0, false): the caller counts it as unpriced instead of guessing.
func (t PriceTable) Cost(model string, u Usage) (usd float64, priced bool) {
	p, ok := t.Lookup(model)
	if !ok {
		return 0, false
	}
	if p.LongContext != nil && u.TotalInputTokens() > p.LongContextThreshold {
		p = *p.LongContext
	}
	cw5m, cw1h := u.CacheCreationInputTokens, int64(0)
	if cc := u.CacheCreation; cc != nil && cc.Ephemeral5m+cc.Ephemeral1h > 0 {
		cw5m, cw1h = cc.Ephemeral5m, cc.Ephemeral1h
		// Anything the breakdown does not account for is priced as 5m.
		if rest := u.CacheCreationInputTokens - cw5m - cw1h; rest > 0 {
			cw5m += rest
		}
	}
	micro := float64(u.InputTokens)*p.Input +
		float64(cw5m)*p.CacheWrite5m +
		float64(cw1h)*p.CacheWrite1h +
		float64(u.CacheReadInputTokens)*p.CacheRead +
		float64(u.OutputTokens)*p.Output
	return micro / 1e6, true
}

// ReserveCost is an upper bound in USD for a call that reads about
// inputTokens and writes at most maxOutputTokens, for budget reservations:
// input is priced at the dearest input-side rate (a 1h cache write), and at
// the long-context tier when the input could cross its threshold.
func (t PriceTable) ReserveCost(model string, inputTokens, maxOutputTokens int64) (usd float64, priced bool) {
	p, ok := t.Lookup(model)
	if !ok {
		return 0, false
	}
	if p.LongContext != nil && inputTokens > p.LongContextThreshold {
		p = *p.LongContext
	}
	in := max(p.Input, p.CacheWrite5m, p.CacheWrite1h)
	return (float64(max(inputTokens, 0))*in + float64(max(maxOutputTokens, 0))*p.Output) / 1e6, true
}
