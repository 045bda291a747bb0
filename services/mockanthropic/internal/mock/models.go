package mock

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// model is one catalog entry of GET /v1/models.
type model struct {
	ID             string
	DisplayName    string
	CreatedAt      string // RFC 3339
	Line           string
	MaxInputTokens int64
	MaxTokens      int64
	Lifecycle      string
}

// catalog is newest first, the order the real endpoint lists models in. The ids are the
// SDK's current model constants; release dates are approximate and only order the list.
var catalog = []model{
	{"claude-fable-5-2", "Claude Fable 5.2", "2026-10-28T00:00:00Z", "fable", 1_000_000, 128_000, "active"},
	{"claude-mythos-5-2", "Claude Mythos 5.2", "2026-10-28T00:00:00Z", "mythos", 1_000_000, 128_000, "active"},
	{"claude-haiku-5-5", "Claude Haiku 5.5", "2026-10-07T00:00:00Z", "haiku", 1_000_000, 64_000, "active"},
	{"claude-sonnet-5-5", "Claude Sonnet 5.5", "2026-10-07T00:00:00Z", "sonnet", 1_000_000, 128_000, "active"},
	{"claude-fable-5-1", "Claude Fable 5.1", "2026-09-15T00:00:00Z", "fable", 1_000_000, 128_000, "active"},
	{"claude-opus-5-5", "Claude Opus 5.5", "2026-09-15T00:00:00Z", "opus", 1_000_000, 128_000, "active"},
	{"claude-mythos-5-1", "Claude Mythos 5.1", "2026-09-15T00:00:00Z", "mythos", 1_000_000, 128_000, "active"},
	{"claude-sonnet-5", "Claude Sonnet 5", "2026-07-01T00:00:00Z", "sonnet", 1_000_000, 128_000, "active"},
	{"claude-fable-5", "Claude Fable 5", "2026-07-01T00:00:00Z", "fable", 1_000_000, 128_000, "active"},
	{"claude-mythos-5", "Claude Mythos 5", "2026-07-01T00:00:00Z", "mythos", 1_000_000, 128_000, "active"},
	{"claude-opus-5", "Claude Opus 5", "2026-07-01T00:00:00Z", "opus", 1_000_000, 128_000, "active"},
	{"claude-opus-4-8", "Claude Opus 4.8", "2026-05-20T00:00:00Z", "opus", 1_000_000, 128_000, "active"},
	{"claude-opus-4-7", "Claude Opus 4.7", "2026-04-01T00:00:00Z", "opus", 1_000_000, 128_000, "active"},
	{"claude-opus-4-6", "Claude Opus 4.6", "2026-02-04T00:00:00Z", "opus", 1_000_000, 128_000, "active"},
	{"claude-sonnet-4-6", "Claude Sonnet 4.6", "2026-02-17T00:00:00Z", "sonnet", 1_000_000, 64_000, "active"},
	{"claude-opus-4-5", "Claude Opus 4.5", "2025-11-24T00:00:00Z", "opus", 200_000, 64_000, "deprecated"},
	{"claude-haiku-4-5", "Claude Haiku 4.5", "2025-10-15T00:00:00Z", "haiku", 200_000, 64_000, "active"},
	{"claude-sonnet-4-5", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z", "sonnet", 200_000, 64_000, "deprecated"},
}

// aliases are dated ids the Messages API accepts for catalog models.
var aliases = map[string]string{
	"claude-opus-4-5-20251101":   "claude-opus-4-5",
	"claude-haiku-4-5-20251001":  "claude-haiku-4-5",
	"claude-sonnet-4-5-20250929": "claude-sonnet-4-5",
}

var modelIndex = func() map[string]*model {
	m := make(map[string]*model, len(catalog)+len(aliases))
	for i := range catalog {
		m[catalog[i].ID] = &catalog[i]
	}
	for alias, id := range aliases {
		m[alias] = m[id]
	}
	return m
}()

func lookupModel(id string) *model { return modelIndex[id] }

type modelJSON struct {
	Type           string  `json:"type"`
	ID             string  `json:"id"`
	DisplayName    string  `json:"display_name"`
	CreatedAt      string  `json:"created_at"`
	Line           string  `json:"line"`
	Lifecycle      string  `json:"lifecycle"`
	MaxInputTokens int64   `json:"max_input_tokens"`
	MaxTokens      int64   `json:"max_tokens"`
	DeprecatedAt   *string `json:"deprecated_at"`
	RetiresAt      *string `json:"retires_at"`
}

func (m *model) json() *modelJSON {
	return &modelJSON{Type: "model", ID: m.ID, DisplayName: m.DisplayName, CreatedAt: m.CreatedAt, Line: m.Line,
		Lifecycle: m.Lifecycle, MaxInputTokens: m.MaxInputTokens, MaxTokens: m.MaxTokens}
}

type modelListJSON struct {
	Data    []*modelJSON `json:"data"`
	HasMore bool         `json:"has_more"`
	FirstID *string      `json:"first_id"`
	LastID  *string      `json:"last_id"`
}

func marshal(v any) []byte {
	// The mock's own types always encode: no channels, funcs or cycles.
	b, _ := json.Marshal(v)
	return b
}

// listModels serves GET /v1/models with the real endpoint's cursor pagination:
// limit (1-1000, default 20), after_id and before_id.
func listModels(q url.Values) ([]byte, *apiError) {
	limit := 20
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return nil, invalidRequest("limit: Input should be an integer between 1 and 1000")
		}
		limit = n
	}
	after, before := q.Get("after_id"), q.Get("before_id")
	if after != "" && before != "" {
		return nil, invalidRequest("after_id and before_id cannot be used together")
	}
	lo, hi := 0, len(catalog)
	if after != "" {
		i := catalogPos(after)
		if i < 0 {
			return nil, newAPIError(http.StatusNotFound, errNotFound, "after_id: model "+after+" not found")
		}
		lo = i + 1
	}
	if before != "" {
		i := catalogPos(before)
		if i < 0 {
			return nil, newAPIError(http.StatusNotFound, errNotFound, "before_id: model "+before+" not found")
		}
		hi = i
	}
	page := catalog[lo:hi]
	hasMore := len(page) > limit
	if hasMore {
		if before != "" {
			// Paging backwards returns the entries right before the cursor.
			page = page[len(page)-limit:]
		} else {
			page = page[:limit]
		}
	}
	out := modelListJSON{Data: make([]*modelJSON, len(page)), HasMore: hasMore}
	for i := range page {
		out.Data[i] = page[i].json()
	}
	if len(page) > 0 {
		out.FirstID, out.LastID = &page[0].ID, &page[len(page)-1].ID
	}
	return marshal(&out), nil
}

func catalogPos(id string) int {
	for i := range catalog {
		if catalog[i].ID == id {
			return i
		}
	}
	return -1
}

// getModel serves GET /v1/models/{id}.
func getModel(id string) ([]byte, *apiError) {
	id, _ = url.PathUnescape(id)
	m := lookupModel(strings.TrimSpace(id))
	if m == nil {
		return nil, newAPIError(http.StatusNotFound, errNotFound, "model: "+id)
	}
	return marshal(m.json()), nil
}
