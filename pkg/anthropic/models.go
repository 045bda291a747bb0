package anthropic

import (
	"sort"
	"time"
)

// ModelInfo is one row of the gateway's model table: what GET /v1/models
// answers for the model and the ceiling the gateway puts on max_tokens.
type ModelInfo struct {
	ID          string
	DisplayName string
	CreatedAt   time.Time
	// MaxInputTokens is the context window (prompt tokens the model accepts).
	MaxInputTokens int64
	// MaxTokens is the model's largest max_tokens (maximum output).
	MaxTokens int64
}

// ModelTable maps model ids to their rows. It is read-only once built.
type ModelTable map[string]ModelInfo

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// DefaultModelTable is the lineup from Anthropic's models overview (current
// and legacy models still served, late 2026): context window and maximum
// output per model, created_at from each model's stated release date. Where
// a model page gave no release day (Opus 4.7, Sonnet 4.6 and the 5.5
// generation) the date is the first day of the month it appeared; the field
// orders the list (newest first), it carries no other meaning. Operators
// add or correct rows under models.table in the YAML.
func DefaultModelTable() ModelTable {
	rows := []ModelInfo{
		{ID: "claude-fable-5-1", DisplayName: "Claude Fable 5.1", CreatedAt: day(2026, 9, 1), MaxInputTokens: 1_000_000, MaxTokens: 128_000},
		{ID: "claude-opus-5-5", DisplayName: "Claude Opus 5.5", CreatedAt: day(2026, 10, 1), MaxInputTokens: 1_000_000, MaxTokens: 128_000},
		{ID: "claude-sonnet-5-5", DisplayName: "Claude Sonnet 5.5", CreatedAt: day(2026, 10, 1), MaxInputTokens: 1_000_000, MaxTokens: 128_000},
		{ID: "claude-haiku-5-5", DisplayName: "Claude Haiku 5.5", CreatedAt: day(2026, 10, 1), MaxInputTokens: 1_000_000, MaxTokens: 128_000},
		{ID: "claude-mythos-5-1", DisplayName: "Claude Mythos 5.1", CreatedAt: day(2026, 9, 1), MaxInputTokens: 1_000_000, MaxTokens: 128_000},
		{ID: "claude-fable-5", DisplayName: "Claude Fable 5", CreatedAt: day(2026, 6, 9), MaxInputTokens: 1_000_000, MaxTokens: 128_000},
		{ID: "claude-mythos-5", DisplayName: "Claude Mythos 5", CreatedAt: day(2026, 6, 9), MaxInputTokens: 1_000_000, MaxTokens: 128_000},
		{ID: "claude-opus-5", DisplayName: "Claude Opus 5", CreatedAt: day(2026, 7, 24), MaxInputTokens: 1_000_000, MaxTokens: 128_000},
		{ID: "claude-sonnet-5", DisplayName: "Claude Sonnet 5", CreatedAt: day(2026, 6, 30), MaxInputTokens: 1_000_000, MaxTokens: 128_000},
		{ID: "claude-opus-4-8", DisplayName: "Claude Opus 4.8", CreatedAt: day(2026, 5, 28), MaxInputTokens: 1_000_000, MaxTokens: 128_000},
		{ID: "claude-opus-4-7", DisplayName: "Claude Opus 4.7", CreatedAt: day(2026, 4, 1), MaxInputTokens: 1_000_000, MaxTokens: 128_000},
		{ID: "claude-opus-4-6", DisplayName: "Claude Opus 4.6", CreatedAt: day(2026, 2, 5), MaxInputTokens: 1_000_000, MaxTokens: 128_000},
		{ID: "claude-sonnet-4-6", DisplayName: "Claude Sonnet 4.6", CreatedAt: day(2026, 2, 1), MaxInputTokens: 1_000_000, MaxTokens: 64_000},
		{ID: "claude-opus-4-5", DisplayName: "Claude Opus 4.5", CreatedAt: day(2025, 11, 24), MaxInputTokens: 200_000, MaxTokens: 64_000},
		{ID: "claude-haiku-4-5", DisplayName: "Claude Haiku 4.5", CreatedAt: day(2025, 10, 15), MaxInputTokens: 200_000, MaxTokens: 64_000},
		{ID: "claude-sonnet-4-5", DisplayName: "Claude Sonnet 4.5", CreatedAt: day(2025, 9, 29), MaxInputTokens: 200_000, MaxTokens: 64_000},
	}
	t := make(ModelTable, len(rows))
	for _, r := range rows {
		t[r.ID] = r
	}
	return t
}

// Lookup returns the row for id: the exact id, else the id without a date
// suffix ("claude-sonnet-4-5-20250929" finds "claude-sonnet-4-5"), as
// PriceTable.Lookup does. The row keeps the table's id.
func (t ModelTable) Lookup(id string) (ModelInfo, bool) {
	if m, ok := t[id]; ok {
		return m, true
	}
	if base, ok := undated(id); ok {
		m, ok := t[base]
		return m, ok
	}
	return ModelInfo{}, false
}

// Merge returns a copy of t with over's rows added or replacing t's.
func (t ModelTable) Merge(over ModelTable) ModelTable {
	out := make(ModelTable, len(t)+len(over))
	for k, v := range t {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

// SortModels orders models as the Models API lists them: newest first, then
// by id so the order is total and pagination cursors are stable.
func SortModels(ms []ModelInfo) {
	sort.SliceStable(ms, func(i, j int) bool {
		if !ms[i].CreatedAt.Equal(ms[j].CreatedAt) {
			return ms[i].CreatedAt.After(ms[j].CreatedAt)
		}
		return ms[i].ID < ms[j].ID
	})
}
