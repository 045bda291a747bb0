package anthropic

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Price is USD per million tokens for each kind of token, plus what changes
// the rates of one call: a long-context tier and the fast-mode multiplier.
type Price struct {
	Input        float64
	CacheWrite5m float64
	CacheWrite1h float64
	CacheRead    float64
	Output       float64

	// LongContext, when set, replaces the prices above for a prompt (input
	// + cache writes + cache reads) of at least LongContextThreshold
	// tokens. With usage.iterations the threshold applies to each sampling
	// iteration on its own, as the API bills it.
	LongContext          *Price
	LongContextThreshold int64

	// FastMultiplier is the documented price multiplier of fast mode
	// (usage.speed "fast") on every token rate; 0 means none is documented
	// for this model, and a fast call is charged MaxFastMultiplier.
	FastMultiplier float64
}

// Validate rejects negative or non-finite prices and an incomplete
// long-context tier.
func (p Price) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    float64
	}{{"input", p.Input}, {"cache_write_5m", p.CacheWrite5m}, {"cache_write_1h", p.CacheWrite1h}, {"cache_read", p.CacheRead}, {"output", p.Output}, {"fast_multiplier", p.FastMultiplier}} {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			errs = append(errs, fmt.Errorf("%s: must be a non-negative number", f.name))
		}
	}
	if p.FastMultiplier != 0 && p.FastMultiplier < 1 {
		errs = append(errs, errors.New("fast_multiplier: must be ≥ 1 (or 0 for undocumented)"))
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

// Multipliers and fees that are not per model.
const (
	// MaxFastMultiplier is the highest fast-mode multiplier Anthropic has
	// documented (Opus 4.6/4.7: $30/$150 against $5/$25). A call the
	// upstream served in fast mode on a model without a documented
	// multiplier is charged at it, so an unknown price errs high.
	MaxFastMultiplier = 6.0
	// GeoUSMultiplier applies to every token rate of a call with
	// inference_geo "us" (pricing page, "Data residency pricing",
	// captured 2026-09-01: "1.1x multiplier on all token pricing
	// categories"; Claude 4.6 and later, earlier models reject it).
	GeoUSMultiplier = 1.1
	// WebSearchUSD is the fee per web search on top of tokens (pricing
	// page, "Web search tool", 2026-09-01: $10 per 1,000 searches).
	WebSearchUSD = 10.0 / 1000
	// WebFetchUSD: web fetch has no charge beyond tokens (same page, "Web
	// fetch tool").
	WebFetchUSD = 0.0
	// CodeExecutionUSD is charged per code_execution_requests entry: the
	// 5-minute minimum of one container at $0.05 per container-hour (same
	// page, "Code execution tool"). The API reports no container time, and
	// the monthly free hours and the "free with web_search_20260209" rule
	// are organisation-wide, so the gateway charges the minimum every time.
	CodeExecutionUSD = 0.05 * 5 / 60
)

// GeoMultiplier is the token price multiplier for a usage.inference_geo (or
// request inference_geo) value: 1 for the default global routing, 1.1 for
// "us", and 1.1 for any other value, so a region added later errs high.
func GeoMultiplier(geo string) float64 {
	switch geo {
	case "", "global":
		return 1
	default:
		return GeoUSMultiplier
	}
}

// Sources of DefaultPrices, cited per row below.
//
//	[P] platform.claude.com/docs/en/about-claude/pricing, captured
//	    2026-09-01 (search corpus "docs"/code id 59279639056): model table,
//	    "Data residency pricing", "Fast mode pricing", "Long context pricing"
//	    (Claude 4.6 and later: full 1M window at standard rates), server
//	    tool fees.
//	[P2] the same page, later capture (docs corpus, read 2026-12-04):
//	    Fable 5.1 / Mythos 5.1 rows.
//	[M] the model overview pages platform.claude.com/docs/*/models/<id>/
//	    overview (docs corpus, read 2026-12-04).
//	[F] code.claude.com/docs/en/fast-mode, 2026 copy (docs corpus, read
//	    2026-12-04): "$30/$150 MTok on both Opus 4.7 and Opus 4.6".
//	[L] the 2025 pricing page's "Long context pricing" for Sonnet 4/4.5
//	    with the context-1m beta (not in the 2026 capture); the $6/$22.50
//	    figures agree with a third-party tracker (react-native-llm-meter
//	    v0.3.1), the cache rates are the usual 1.25x/2x/0.1x of $6.
//	[3p] third-party price trackers only (read 2026-12-04); confirm
//	    before relying on them.

// DefaultPrices is the built-in table. Operators override or extend it with
// the "prices" section of KEYWARD_CONFIG; an allowed model without a price
// is a configuration error.
func DefaultPrices() PriceTable {
	opus45 := Price{Input: 5, CacheWrite5m: 6.25, CacheWrite1h: 10, CacheRead: 0.50, Output: 25}
	opus46, opus48 := opus45, opus45
	opus46.FastMultiplier = 6 // [F] $30/$150
	opus48.FastMultiplier = 2 // [P] $10/$50
	opus4 := Price{Input: 15, CacheWrite5m: 18.75, CacheWrite1h: 30, CacheRead: 1.50, Output: 75}
	sonnet4 := Price{Input: 3, CacheWrite5m: 3.75, CacheWrite1h: 6, CacheRead: 0.30, Output: 15}
	// Sonnet 4 and 4.5 read prompts over 200k tokens only with the
	// context-1m beta, at a premium from 200k on [L]; the SDK docstring of
	// usage.iterations says ">= 200k".
	sonnet4Long := sonnet4
	sonnet4Long.LongContext = &Price{Input: 6, CacheWrite5m: 7.50, CacheWrite1h: 12, CacheRead: 0.60, Output: 22.50}
	sonnet4Long.LongContextThreshold = 200_000
	haiku45 := Price{Input: 1, CacheWrite5m: 1.25, CacheWrite1h: 2, CacheRead: 0.10, Output: 5}
	haiku35 := Price{Input: 0.80, CacheWrite5m: 1, CacheWrite1h: 1.60, CacheRead: 0.08, Output: 4}
	sonnet5 := Price{Input: 2, CacheWrite5m: 2.50, CacheWrite1h: 4, CacheRead: 0.20, Output: 10}
	fable5 := Price{Input: 10, CacheWrite5m: 12.50, CacheWrite1h: 20, CacheRead: 1, Output: 50}
	fable51 := Price{Input: 10, CacheWrite5m: 12.50, CacheWrite1h: 20, CacheRead: 0.25, Output: 50}
	// Fable 5.2 / Mythos 5.2 [3p]: $8/$40 and $0.20 reads (phuryn/
	// claude-usage v1.5.7, checked 2026-12-01); cache writes assumed at the
	// usual 1.25x/2x. Fast mode is documented for them, its multiplier is
	// not: fast calls are charged MaxFastMultiplier.
	fable52 := Price{Input: 8, CacheWrite5m: 10, CacheWrite1h: 16, CacheRead: 0.20, Output: 40}

	return PriceTable{
		"claude-opus-4-8":   opus48,  // [P]
		"claude-opus-4-7":   opus46,  // [P]; fast mode [F], removed 2026-07-24 but billed 6x if reported
		"claude-opus-4-6":   opus46,  // [P]; fast mode [F]
		"claude-opus-4-5":   opus45,  // [P]
		"claude-opus-4-1":   opus4,   // [P] retired except on Bedrock/Vertex
		"claude-opus-4":     opus4,   // [P] claude-opus-4-20250514
		"claude-opus-4-0":   opus4,   // [P]
		"claude-sonnet-4-6": sonnet4, // [P]; 1M window at standard rates
		"claude-sonnet-4-5": sonnet4Long,
		"claude-sonnet-4":   sonnet4Long, // claude-sonnet-4-20250514
		"claude-sonnet-4-0": sonnet4Long,
		"claude-haiku-4-5":  haiku45, // [P]
		"claude-3-5-haiku":  haiku35, // [P] claude-3-5-haiku-20241022, retired except on Bedrock/Vertex
		"claude-opus-5":     opus48,  // [P] incl. fast mode $10/$50
		"claude-sonnet-5":   sonnet5, // [P] the launch price became standard
		"claude-fable-5":    fable5,  // [P]
		"claude-mythos-5":   fable5,  // [P]
		"claude-fable-5-1":  fable51, // [P2]
		"claude-mythos-5-1": fable51, // [P2]
		"claude-fable-5-2":  fable52, // [3p]
		"claude-mythos-5-2": fable52, // [3p]
		// [M] Opus 5.5: $4/$20, writes $5/$8, reads $0.20. Fast mode is
		// documented, its multiplier is not (MaxFastMultiplier applies).
		"claude-opus-5-5": {Input: 4, CacheWrite5m: 5, CacheWrite1h: 8, CacheRead: 0.20, Output: 20},
		// [3p] Sonnet 5.5: as Sonnet 5, cache reads cut to $0.10 on 2026-10-07.
		"claude-sonnet-5-5": {Input: 2, CacheWrite5m: 2.50, CacheWrite1h: 4, CacheRead: 0.10, Output: 10},
		// [M] Haiku 5.5 is priced by prompt length: prompts up to 100,000
		// tokens at the first rates, longer prompts at the second.
		"claude-haiku-5-5": {
			Input: 0.10, CacheWrite5m: 0.125, CacheWrite1h: 0.20, CacheRead: 0.01, Output: 0.50,
			LongContext:          &Price{Input: 0.50, CacheWrite5m: 0.625, CacheWrite1h: 1, CacheRead: 0.05, Output: 2.50},
			LongContextThreshold: 100_001,
		},
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

// Bill is the price of one call, split so a test or a log can see each
// part.
type Bill struct {
	TokensUSD       float64 // every token, after the speed and geo multipliers
	FeesUSD         float64 // per-call server tool fees (never multiplied)
	SpeedMultiplier float64
	GeoMultiplier   float64
	LongContext     bool // some tokens were priced at the long-context tier
	// Bounded: fast mode on a model without a documented multiplier,
	// charged at MaxFastMultiplier.
	Bounded bool
}

// TotalUSD is what the call costs.
func (b Bill) TotalUSD() float64 { return b.TokensUSD + b.FeesUSD }

// Cost prices one call's token usage in USD (no fees or multipliers: use
// Bill when the usage carries them). A model without a price returns
// (0, false): the caller counts it as unpriced instead of guessing.
func (t PriceTable) Cost(model string, u Usage) (usd float64, priced bool) {
	b, ok := t.Bill(model, u, UsageExt{})
	return b.TotalUSD(), ok
}

// Bill prices one call from its usage: tokens at the model's rates (cache
// writes by their 5m/1h breakdown when the upstream sent one, otherwise all
// as 5-minute writes, the docs' rule), the long-context tier chosen per
// sampling iteration when x.Iterations is present (else for the whole call),
// times the fast-mode multiplier when x.Speed is "fast" and the data
// residency multiplier of x.InferenceGeo, plus the server tool fees of
// x.ServerToolUse.
func (t PriceTable) Bill(model string, u Usage, x UsageExt) (Bill, bool) {
	p, ok := t.Lookup(model)
	if !ok {
		return Bill{}, false
	}
	var micros float64
	var long bool
	if len(x.Iterations) > 0 {
		var sum Usage
		for _, it := range x.Iterations {
			iu := it.Tokens()
			m, l := p.tokenMicros(iu, iu.TotalInputTokens())
			micros += m
			long = long || l
			sum.InputTokens += iu.InputTokens
			sum.OutputTokens += iu.OutputTokens
			sum.CacheCreationInputTokens += iu.CacheCreationInputTokens
			sum.CacheReadInputTokens += iu.CacheReadInputTokens
		}
		// Tokens the top level reports beyond the iterations are still
		// billed; they are priced at the tier of the whole call, which
		// errs high.
		rest := Usage{
			InputTokens:              max(u.InputTokens-sum.InputTokens, 0),
			OutputTokens:             max(u.OutputTokens-sum.OutputTokens, 0),
			CacheCreationInputTokens: max(u.CacheCreationInputTokens-sum.CacheCreationInputTokens, 0),
			CacheReadInputTokens:     max(u.CacheReadInputTokens-sum.CacheReadInputTokens, 0),
		}
		if rest.TotalTokens() > 0 {
			m, l := p.tokenMicros(rest, u.TotalInputTokens())
			micros += m
			long = long || l
		}
	} else {
		micros, long = p.tokenMicros(u, u.TotalInputTokens())
	}
	b := Bill{SpeedMultiplier: 1, GeoMultiplier: GeoMultiplier(x.InferenceGeo), LongContext: long}
	if x.Speed == "fast" {
		b.SpeedMultiplier = p.FastMultiplier
		if b.SpeedMultiplier == 0 {
			b.SpeedMultiplier, b.Bounded = MaxFastMultiplier, true
		}
	}
	b.TokensUSD = micros / 1e6 * b.SpeedMultiplier * b.GeoMultiplier
	if s := x.ServerToolUse; s != nil {
		b.FeesUSD = float64(max(s.WebSearchRequests, 0))*WebSearchUSD +
			float64(max(s.WebFetchRequests, 0))*WebFetchUSD +
			float64(max(s.CodeExecutionRequests, 0))*CodeExecutionUSD
	}
	return b, true
}

// tier is the rate card for a prompt of promptTokens.
func (p Price) tier(promptTokens int64) (Price, bool) {
	if p.LongContext != nil && promptTokens >= p.LongContextThreshold {
		return *p.LongContext, true
	}
	return p, false
}

// tokenMicros prices u in micro-dollars at the tier for promptTokens.
func (p Price) tokenMicros(u Usage, promptTokens int64) (float64, bool) {
	r, long := p.tier(promptTokens)
	cw5m, cw1h := u.CacheCreationInputTokens, int64(0)
	if cc := u.CacheCreation; cc != nil && cc.Ephemeral5m+cc.Ephemeral1h > 0 {
		cw5m, cw1h = cc.Ephemeral5m, cc.Ephemeral1h
		// Anything the breakdown does not account for is priced as 5m.
		if rest := u.CacheCreationInputTokens - cw5m - cw1h; rest > 0 {
			cw5m += rest
		}
	}
	return float64(u.InputTokens)*r.Input +
		float64(cw5m)*r.CacheWrite5m +
		float64(cw1h)*r.CacheWrite1h +
		float64(u.CacheReadInputTokens)*r.CacheRead +
		float64(u.OutputTokens)*r.Output, long
}

// ReserveCost is an upper bound in USD for a call that reads about
// inputTokens and writes at most maxOutputTokens, for budget reservations:
// input is priced at the dearest input-side rate (a 1h cache write), and at
// the long-context tier when the input reaches its threshold. It applies no
// multipliers or fees; Reserve does.
func (t PriceTable) ReserveCost(model string, inputTokens, maxOutputTokens int64) (usd float64, priced bool) {
	p, ok := t.Lookup(model)
	if !ok {
		return 0, false
	}
	r, _ := p.tier(inputTokens)
	in := max(r.Input, r.CacheWrite5m, r.CacheWrite1h)
	return (float64(max(inputTokens, 0))*in + float64(max(maxOutputTokens, 0))*r.Output) / 1e6, true
}
