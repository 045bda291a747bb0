package config

import (
	"sort"
	"strings"
	"time"

	"github.com/keyward/keyward/pkg/anthropic"
)

// modelsYAML is the `models:` section of KEYWARD_CONFIG.
type modelsYAML struct {
	Allowed []string `yaml:"allowed"`
	Default string   `yaml:"default"`
	// MaxTokensCap lowers every model's max_tokens ceiling; unset (0), each
	// model's own maximum output is the ceiling.
	MaxTokensCap   int64 `yaml:"max_tokens_cap"`
	QueryMaxTokens int64 `yaml:"query_max_tokens"`
	// Aliases maps the name a developer sends to the upstream model id.
	Aliases map[string]string `yaml:"aliases"`
	// Table adds models to the built-in table or corrects a row.
	Table map[string]modelRowYAML `yaml:"table"`
}

type modelRowYAML struct {
	DisplayName    string `yaml:"display_name"`
	CreatedAt      string `yaml:"created_at"` // RFC 3339 or YYYY-MM-DD
	MaxInputTokens int64  `yaml:"max_input_tokens"`
	MaxTokens      int64  `yaml:"max_tokens"`
}

// Models is the model routing the handlers use: the table behind
// GET /v1/models and the max_tokens ceilings, and the aliases.
type Models struct {
	Table   anthropic.ModelTable
	Aliases map[string]string
}

// applyModelsYAML merges the YAML's model table rows and aliases into c.
func applyModelsYAML(c *Config, m modelsYAML, p *problems) {
	if c.Models.Table == nil {
		c.Models.Table = anthropic.DefaultModelTable()
	}
	over := anthropic.ModelTable{}
	ids := make([]string, 0, len(m.Table))
	for id := range m.Table {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		row := m.Table[id]
		where := "models.table." + id
		if !validModelID(id) {
			p.addf("%s: not a valid model id", where)
			continue
		}
		base, known := c.Models.Table.Lookup(id)
		if !known {
			base = anthropic.ModelInfo{DisplayName: id}
		}
		base.ID = id
		if row.DisplayName != "" {
			base.DisplayName = row.DisplayName
		}
		if row.CreatedAt != "" {
			t, err := parseModelDate(row.CreatedAt)
			if err != nil {
				p.addf("%s.created_at %q: want RFC 3339 or YYYY-MM-DD", where, row.CreatedAt)
			}
			base.CreatedAt = t
		}
		if row.MaxInputTokens < 0 || row.MaxTokens < 0 {
			p.addf("%s: max_input_tokens and max_tokens must be ≥ 0", where)
		}
		if row.MaxInputTokens > 0 {
			base.MaxInputTokens = row.MaxInputTokens
		}
		if row.MaxTokens > 0 {
			base.MaxTokens = row.MaxTokens
		}
		if base.MaxTokens == 0 {
			p.addf("%s: max_tokens (the model's maximum output) is required for a model the gateway does not know", where)
		}
		over[id] = base
	}
	c.Models.Table = c.Models.Table.Merge(over)
	if len(m.Aliases) > 0 {
		c.Models.Aliases = make(map[string]string, len(m.Aliases))
		for k, v := range m.Aliases {
			c.Models.Aliases[k] = v
		}
	}
}

// validateModels checks aliases against the final allowlist. It runs after
// KEYWARD_ALLOWED_MODELS has been applied.
func (c *Config) validateModels(p *problems) {
	if c.Models.Table == nil {
		c.Models.Table = anthropic.DefaultModelTable()
	}
	names := make([]string, 0, len(c.Models.Aliases))
	for a := range c.Models.Aliases {
		names = append(names, a)
	}
	sort.Strings(names)
	for _, a := range names {
		target := c.Models.Aliases[a]
		switch {
		case !validModelID(a):
			p.addf("models.aliases: %q is not a valid model name", a)
		case !validModelID(target):
			p.addf("models.aliases.%s: %q is not a valid model id", a, target)
		case contains(c.AllowedModels, a):
			p.addf("models.aliases.%s: the name is also an allowed model id; an alias must not shadow a model", a)
		case !contains(c.AllowedModels, target):
			p.addf("models.aliases.%s: target %q is not in the allowed models", a, target)
		}
	}
	if c.MaxTokensCap < 0 {
		p.addf("models.max_tokens_cap must be ≥ 1 when set")
	}
	if lim := c.MaxTokensFor(c.DefaultModel); c.MaxTokensCap == 0 && lim > 0 && c.QueryMaxTokens > lim {
		p.addf("models.query_max_tokens %d is above the maximum output of %s (%d)", c.QueryMaxTokens, c.DefaultModel, lim)
	}
}

// ResolveModel maps the model a caller sent to the upstream model id: an
// alias becomes its target, anything else stays as sent.
func (c *Config) ResolveModel(requested string) string {
	if t, ok := c.Models.Aliases[requested]; ok {
		return t
	}
	return requested
}

// ModelAllowed reports whether an upstream model id is on the allowlist.
func (c *Config) ModelAllowed(id string) bool { return contains(c.AllowedModels, id) }

// MaxTokensFor is the max_tokens ceiling for an upstream model id: the
// model's own maximum output, lowered to models.max_tokens_cap when that is
// set. 0 means no ceiling is known (an allowed model missing from the table
// and no cap): the upstream judges max_tokens itself.
func (c *Config) MaxTokensFor(id string) int64 {
	var limit int64
	if m, ok := c.Models.Table.Lookup(id); ok {
		limit = m.MaxTokens
	}
	if c.MaxTokensCap > 0 && (limit == 0 || c.MaxTokensCap < limit) {
		limit = c.MaxTokensCap
	}
	return limit
}

// ListedModels is what GET /v1/models shows, newest first: every allowed
// model, and every alias as its own entry carrying its target's limits, so a
// client's model discovery (Claude Code's /model list) offers exactly the
// names the gateway accepts.
func (c *Config) ListedModels() []anthropic.ModelInfo {
	out := make([]anthropic.ModelInfo, 0, len(c.AllowedModels)+len(c.Models.Aliases))
	for _, id := range c.AllowedModels {
		out = append(out, c.modelInfo(id))
	}
	for alias, target := range c.Models.Aliases {
		if !c.ModelAllowed(target) {
			continue
		}
		m := c.modelInfo(target)
		m.ID = alias
		out = append(out, m)
	}
	anthropic.SortModels(out)
	return out
}

// ListedModel is one entry of ListedModels.
func (c *Config) ListedModel(id string) (anthropic.ModelInfo, bool) {
	if c.ModelAllowed(id) {
		return c.modelInfo(id), true
	}
	if t, ok := c.Models.Aliases[id]; ok && c.ModelAllowed(t) {
		m := c.modelInfo(t)
		m.ID = id
		return m, true
	}
	return anthropic.ModelInfo{}, false
}

func (c *Config) modelInfo(id string) anthropic.ModelInfo {
	m, ok := c.Models.Table.Lookup(id)
	if !ok {
		m = anthropic.ModelInfo{DisplayName: id}
	}
	m.ID = id
	if lim := c.MaxTokensFor(id); lim > 0 {
		m.MaxTokens = lim
	}
	return m
}

func parseModelDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Parse(time.DateOnly, s)
}

func validModelID(id string) bool {
	return len(id) > 0 && len(id) <= 256 && !strings.ContainsAny(id, " \t\r\n\"'")
}

// The per-identity defaults are sized for one developer's Claude Code
// session, which must never hit them (README, "Claude Code through
// keyward"): up to ~10 parallel subagents each streaming one request per
// tool step (a step every 2-3 s at the fastest), plus the small model's
// title/summary calls and count_tokens. That peaks near 200-250 requests a
// minute and about 12 open streams.
const (
	// DefaultRateLimit is KEYWARD_RATE_LIMIT's default.
	DefaultRateLimit = "300/60s"
	// DefaultMaxStreams is limits.max_concurrent_streams' default.
	DefaultMaxStreams = 16
)
