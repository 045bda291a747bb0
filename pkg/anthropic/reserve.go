package anthropic

import (
	"errors"
	"fmt"
)

// ErrUnpriced is returned by Reserve for a model without a price.
var ErrUnpriced = errors.New("model has no price")

// ReserveInput is what Reserve needs to bound one Messages call.
type ReserveInput struct {
	Model string
	// VisibleInputTokens is the estimate of what the body shows
	// (EstimateInputTokens), or count_tokens' exact figure.
	VisibleInputTokens int64
	Features           Features
	Policy             FeaturePolicy
	// OutputTokens is the output to reserve: max_tokens, or the first slice
	// of a call whose output is metered and extended live.
	OutputTokens int64
}

// Reservation is the bound Reserve computed, with its parts.
type Reservation struct {
	VisibleInputTokens int64
	HiddenInputTokens  int64 // fetched by the API, at the policy's bounds
	// RereadTokens is the prompt read again by each server tool iteration.
	RereadTokens   int64
	OutputTokens   int64
	ServerToolUses int64
	// CostUSD is the whole bound: tokens × multipliers + fees.
	CostUSD         float64
	FeesUSD         float64
	SpeedMultiplier float64
	GeoMultiplier   float64
	LongContext     bool
}

// InputTokens is every input token reserved.
func (r Reservation) InputTokens() int64 {
	return r.VisibleInputTokens + r.HiddenInputTokens + r.RereadTokens
}

// Tokens is what a tokens-per-minute limit reserves.
func (r Reservation) Tokens() int64 { return r.InputTokens() + r.OutputTokens }

// Reserve bounds the cost of one call before it is made, from what the body
// shows and what it makes the API fetch. It refuses (a *FeatureError, an
// ErrInvalidRequest) what the policy does not allow, and returns
// ErrUnpriced for a model without a price.
//
// The prompt is the visible input plus the policy's bound for each fetched
// document, image, upload and server tool use, priced at the dearest input
// rate (a 1-hour cache write); with RereadPerToolUse each server tool use
// reads the prompt and the output again at the input rate. Every token is
// priced at the long-context tier when one iteration's prompt (plus the
// output so far, in a server-tool loop) could reach its threshold, times the fast-mode multiplier (the documented
// one, else MaxFastMultiplier) and the inference_geo multiplier; server tool
// fees are added for every allowed use.
func (t PriceTable) Reserve(in ReserveInput) (Reservation, error) {
	f, pol := in.Features, in.Policy
	if err := pol.Check(f); err != nil {
		return Reservation{}, err
	}
	p, ok := t.Lookup(in.Model)
	if !ok {
		return Reservation{}, fmt.Errorf("reserving for %q: %w", in.Model, ErrUnpriced)
	}
	r := Reservation{
		VisibleInputTokens: max(in.VisibleInputTokens, 0),
		HiddenInputTokens:  pol.HiddenInputTokens(f),
		OutputTokens:       max(in.OutputTokens, 0),
		ServerToolUses:     f.ServerToolUses(pol.DefaultMaxUses),
		SpeedMultiplier:    1,
		GeoMultiplier:      GeoMultiplier(f.InferenceGeo),
	}
	if f.MCPServers > 0 {
		r.ServerToolUses += int64(f.MCPServers) * pol.DefaultMaxUses
	}
	prompt := r.VisibleInputTokens + r.HiddenInputTokens
	if pol.RereadPerToolUse {
		r.RereadTokens = rereads(f, pol, prompt, r.OutputTokens, r.ServerToolUses)
	}
	// The tier follows the prompt; in a server-tool loop a later
	// iteration's prompt also holds the output written so far.
	longest := prompt
	if r.ServerToolUses > 0 {
		longest += r.OutputTokens
	}
	rate, long := p.tier(longest)
	r.LongContext = long
	if f.Speed == "fast" {
		r.SpeedMultiplier = p.FastMultiplier
		if r.SpeedMultiplier == 0 {
			r.SpeedMultiplier = MaxFastMultiplier
		}
	}
	micros := float64(prompt)*max(rate.Input, rate.CacheWrite5m, rate.CacheWrite1h) +
		float64(r.RereadTokens)*rate.Input +
		float64(r.OutputTokens)*rate.Output
	var searches, execs int64
	for _, st := range f.ServerTools {
		uses := st.uses(pol.DefaultMaxUses)
		switch st.Kind {
		case ToolWebSearch:
			searches += uses
		case ToolCodeExecution:
			execs += uses
		}
	}
	if f.Container && execs == 0 {
		execs = 1 // a container with files or skills bills its minimum even unused
	}
	r.FeesUSD = float64(searches)*WebSearchUSD + float64(execs)*CodeExecutionUSD
	r.CostUSD = micros/1e6*r.SpeedMultiplier*r.GeoMultiplier + r.FeesUSD
	return r, nil
}

// rereads bounds the input a server-tool loop reads again. Iteration k
// (k = 1…U, one per use) reads the prompt as it stood before the call, the
// output so far, and the results of the uses before it (each result's own
// first reading is in the prompt already): U·(base + output) plus
// Σ min((k−1)·largest result, all results).
func rereads(f Features, pol FeaturePolicy, prompt, output, uses int64) int64 {
	if uses <= 0 {
		return 0
	}
	var results, largest int64
	for _, t := range f.ServerTools {
		per := pol.perUseTokens(t)
		results += t.uses(pol.DefaultMaxUses) * per
		largest = max(largest, per)
	}
	if f.MCPServers > 0 {
		results += int64(f.MCPServers) * pol.DefaultMaxUses * pol.Bounds.MCPServerTokens
		largest = max(largest, pol.Bounds.MCPServerTokens)
	}
	base := prompt - results
	n := uses * (base + output)
	if largest <= 0 {
		return n
	}
	// Terms grow by largest until they reach results, then stay there.
	q := min(uses, results/largest+1)
	n += largest * q * (q - 1) / 2
	n += (uses - q) * results
	return n
}
