package mock

import (
	"sort"
	"sync"
)

// Billing truth: what the real API would bill for each call, whatever the caller saw. A
// gateway's own accounting is checked against it.
//
// A call is billed once it passes validation and reaches "the model" without an injected
// error answer: its input (prompt, fetched documents and images, server-side context) from
// that moment on, even if the client leaves during first_byte_ms or hang. Output is billed
// for what was generated:
//   - a non-streamed reply is generated whole before it is sent, so it is billed whole;
//   - a stream bills each event as the mock begins to send it, including the event during
//     whose delay or write the client was found gone (or which drop_after or error_after
//     replaced): a thinking or redacted_thinking block bills all its hidden tokens at its
//     content_block_start, a server_tool_use bills its request, its query and its results'
//     input tokens at its content_block_start, and text and tool_use blocks bill their tokens
//     delta by delta, in proportion to the bytes sent so far (rounded up).

// Billed is the usage the real API would bill for one call.
type Billed struct {
	InputTokens              int64         `json:"input_tokens"`
	CacheCreationInputTokens int64         `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64         `json:"cache_read_input_tokens"`
	CacheCreation            CacheCreation `json:"cache_creation"`
	OutputTokens             int64         `json:"output_tokens"`   // includes thinking_tokens
	ThinkingTokens           int64         `json:"thinking_tokens"` // hidden reasoning billed as output
	ServerToolUse            ServerToolUse `json:"server_tool_use"`
	Speed                    string        `json:"speed"` // "standard" or "fast"
	InferenceGeo             string        `json:"inference_geo,omitempty"`
	Iterations               []Iteration   `json:"iterations,omitempty"`
}

// billed renders the call's billing truth; zero for a call nothing was billed for.
func (c *call) billedJSON() Billed {
	if !c.accepted {
		return Billed{Speed: "standard"}
	}
	u := &c.billed
	b := Billed{
		InputTokens:              u.input,
		CacheCreationInputTokens: u.cacheCreation(),
		CacheReadInputTokens:     u.cacheRead,
		CacheCreation:            CacheCreation{u.cacheCreate5m, u.cacheCreate1h},
		OutputTokens:             u.output,
		ThinkingTokens:           u.thinking,
		ServerToolUse:            ServerToolUse{u.webSearch, u.webFetch},
		Speed:                    c.billedSpeed(),
		InferenceGeo:             c.geo,
		Iterations:               splitIterations(u, c.iterations),
	}
	return b
}

func (c *call) billedSpeed() string {
	if c.speed == "fast" {
		return "fast"
	}
	return "standard"
}

// BillingTotals sums the billed usage of many calls.
type BillingTotals struct {
	Calls                    int64         `json:"calls"`
	InputTokens              int64         `json:"input_tokens"`
	CacheCreationInputTokens int64         `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64         `json:"cache_read_input_tokens"`
	CacheCreation            CacheCreation `json:"cache_creation"`
	OutputTokens             int64         `json:"output_tokens"`
	ThinkingTokens           int64         `json:"thinking_tokens"`
	ServerToolUse            ServerToolUse `json:"server_tool_use"`
}

func (t *BillingTotals) add(b *Billed) {
	t.Calls++
	t.InputTokens += b.InputTokens
	t.CacheCreationInputTokens += b.CacheCreationInputTokens
	t.CacheReadInputTokens += b.CacheReadInputTokens
	t.CacheCreation.Ephemeral5m += b.CacheCreation.Ephemeral5m
	t.CacheCreation.Ephemeral1h += b.CacheCreation.Ephemeral1h
	t.OutputTokens += b.OutputTokens
	t.ThinkingTokens += b.ThinkingTokens
	t.ServerToolUse.WebSearchRequests += b.ServerToolUse.WebSearchRequests
	t.ServerToolUse.WebFetchRequests += b.ServerToolUse.WebFetchRequests
}

// BillingGroup is the billed usage of the calls sharing a model, speed and inference_geo,
// the dimensions a price depends on.
type BillingGroup struct {
	Model        string `json:"model"`
	Speed        string `json:"speed"`
	InferenceGeo string `json:"inference_geo"`
	BillingTotals
}

// Billing is the JSON of GET /_mock/billing.
type Billing struct {
	Models map[string]BillingTotals `json:"models"`
	Groups []BillingGroup           `json:"groups"`
	Total  BillingTotals            `json:"total"`
}

type billKey struct{ model, speed, geo string }

// billingBook accumulates billed usage since start-up or the last reset. Unlike the request
// ring it forgets nothing, so a long run's bill is complete.
type billingBook struct {
	mu     sync.Mutex
	groups map[billKey]*BillingTotals
}

func newBillingBook() *billingBook { return &billingBook{groups: map[billKey]*BillingTotals{}} }

// maxBillingGroups bounds the map: model ids are validated against the catalog and speed has
// two values, so only inference_geo could grow it.
const maxBillingGroups = 10_000

func (bb *billingBook) record(c *call, b *Billed) {
	if !c.accepted {
		return
	}
	k := billKey{c.model, b.Speed, b.InferenceGeo}
	bb.mu.Lock()
	t := bb.groups[k]
	if t == nil {
		if len(bb.groups) >= maxBillingGroups {
			k.geo = "other"
			if t = bb.groups[k]; t == nil {
				t = new(BillingTotals)
				bb.groups[k] = t
			}
		} else {
			t = new(BillingTotals)
			bb.groups[k] = t
		}
	}
	t.add(b)
	bb.mu.Unlock()
}

func (bb *billingBook) snapshot() Billing {
	out := Billing{Models: map[string]BillingTotals{}, Groups: []BillingGroup{}}
	bb.mu.Lock()
	for k, t := range bb.groups {
		out.Groups = append(out.Groups, BillingGroup{Model: k.model, Speed: k.speed, InferenceGeo: k.geo, BillingTotals: *t})
	}
	bb.mu.Unlock()
	sort.Slice(out.Groups, func(i, j int) bool {
		a, b := &out.Groups[i], &out.Groups[j]
		if a.Model != b.Model {
			return a.Model < b.Model
		}
		if a.Speed != b.Speed {
			return a.Speed < b.Speed
		}
		return a.InferenceGeo < b.InferenceGeo
	})
	for i := range out.Groups {
		g := &out.Groups[i]
		m := out.Models[g.Model]
		m.addTotals(&g.BillingTotals)
		out.Models[g.Model] = m
		out.Total.addTotals(&g.BillingTotals)
	}
	return out
}

func (t *BillingTotals) addTotals(o *BillingTotals) {
	t.Calls += o.Calls
	t.InputTokens += o.InputTokens
	t.CacheCreationInputTokens += o.CacheCreationInputTokens
	t.CacheReadInputTokens += o.CacheReadInputTokens
	t.CacheCreation.Ephemeral5m += o.CacheCreation.Ephemeral5m
	t.CacheCreation.Ephemeral1h += o.CacheCreation.Ephemeral1h
	t.OutputTokens += o.OutputTokens
	t.ThinkingTokens += o.ThinkingTokens
	t.ServerToolUse.WebSearchRequests += o.ServerToolUse.WebSearchRequests
	t.ServerToolUse.WebFetchRequests += o.ServerToolUse.WebFetchRequests
}

func (bb *billingBook) reset() {
	bb.mu.Lock()
	clear(bb.groups)
	bb.mu.Unlock()
}
