package config

import (
	"fmt"
	"math"
	"os"
	"sort"

	"github.com/keyward/keyward/pkg/ratelimit"
	"github.com/keyward/keyward/services/gateway/internal/catalog"
)

// fileConfig is the KEYWARD_CONFIG YAML. Unknown keys are errors.
type fileConfig struct {
	SystemPrompt *string               `yaml:"system_prompt"`
	Models       modelsYAML            `yaml:"models"`
	Limits       limitsYAML            `yaml:"limits"`
	Tiers        map[string]limitsYAML `yaml:"tiers"`
	Prices       map[string]priceYAML  `yaml:"prices"`
	Features     featuresYAML          `yaml:"features"`
	Alerts       struct {
		SpendUSDPerHour *float64 `yaml:"spend_usd_per_hour"`
	} `yaml:"alerts"`
	Analytics map[string]catalog.QueryTypeYAML `yaml:"analytics"`
	// AnalyticsSources is the allowlist of the catalog's data sources (sources.go).
	AnalyticsSources analyticsSourcesYAML `yaml:"analytics_sources"`
}

type limitsYAML struct {
	Requests             string  `yaml:"requests"`
	TokensPerMinute      int64   `yaml:"tokens_per_minute"`
	DailyBudgetUSD       float64 `yaml:"daily_budget_usd"`
	GlobalDailyBudgetUSD float64 `yaml:"global_daily_budget_usd"`
	MaxConcurrentStreams int     `yaml:"max_concurrent_streams"`
	MaxInflight          int     `yaml:"max_inflight"`
	SafetyLimits         `yaml:",inline"`
}

func applyYAML(c *Config, path string, p *problems, takeRequests bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading KEYWARD_CONFIG %s: %w", path, err)
	}
	var f fileConfig
	if err := decodeStrictYAML(b, &f); err != nil {
		return fmt.Errorf("parsing KEYWARD_CONFIG %s: %w", path, err)
	}
	if f.SystemPrompt != nil {
		if *f.SystemPrompt == "" {
			p.addf("system_prompt must not be empty when set")
		}
		c.SystemPrompt = *f.SystemPrompt
	}
	if len(f.Models.Allowed) > 0 {
		c.AllowedModels = f.Models.Allowed
	}
	if f.Models.Default != "" {
		c.DefaultModel = f.Models.Default
	}
	if f.Models.MaxTokensCap != 0 {
		c.MaxTokensCap = f.Models.MaxTokensCap
	}
	if f.Models.QueryMaxTokens != 0 {
		c.QueryMaxTokens = f.Models.QueryMaxTokens
	}
	applyModelsYAML(c, f.Models, p)

	def, streams := f.Limits.policy(p, "limits", "")
	if !takeRequests {
		def.Requests = ratelimit.Limit{}
	}
	c.Default = def
	if streams > 0 {
		c.MaxStreams[""] = streams
	}
	if f.Limits.MaxInflight < 0 {
		p.addf("limits.max_inflight must be ≥ 0")
	} else if f.Limits.MaxInflight > 0 {
		c.MaxInflight = f.Limits.MaxInflight
	}
	c.Safety.takeYAML(f.Limits.SafetyLimits, f.Tiers, p)
	if !validUSD(f.Limits.GlobalDailyBudgetUSD) {
		p.addf("limits.global_daily_budget_usd must be ≥ 0 and finite")
	}
	names := make([]string, 0, len(f.Tiers))
	for n := range f.Tiers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t := f.Tiers[name]
		if name == "" {
			p.addf("tiers: empty tier name")
			continue
		}
		if t.GlobalDailyBudgetUSD != 0 || t.MaxInflight != 0 {
			p.addf("tiers.%s: global_daily_budget_usd and max_inflight are global settings (set them under limits)", name)
		}
		pol, st := t.policy(p, "tiers."+name, name)
		c.Tiers[name] = pol
		if st > 0 {
			c.MaxStreams[name] = st
		}
	}
	applyPrices(c, f.Prices, p)
	applyFeatures(c, f.Features, p)
	if f.Alerts.SpendUSDPerHour != nil {
		if !validUSD(*f.Alerts.SpendUSDPerHour) {
			p.addf("alerts.spend_usd_per_hour must be ≥ 0 and finite")
		}
		c.SpendAlertPerHour = *f.Alerts.SpendUSDPerHour
	}
	if f.Analytics != nil {
		cat, errs := catalog.Build(f.Analytics)
		for _, e := range errs {
			p.addf("%s", e)
		}
		c.Catalog = cat
	}
	c.AnalyticsSources.Allow, c.AnalyticsSources.CAFile = f.AnalyticsSources.Allow, f.AnalyticsSources.CAFile
	return nil
}

func (l limitsYAML) policy(p *problems, where, name string) (ratelimit.Policy, int) {
	pol := ratelimit.Policy{Name: name, TokensPerMinute: l.TokensPerMinute, DailyBudgetUSD: l.DailyBudgetUSD, GlobalDailyUSD: l.GlobalDailyBudgetUSD}
	if l.Requests != "" {
		lim, err := ratelimit.ParseLimit(l.Requests)
		if err != nil {
			p.addf("%s.requests %q: %v", where, l.Requests, err)
		}
		pol.Requests = lim
	}
	if l.TokensPerMinute < 0 {
		p.addf("%s.tokens_per_minute must be ≥ 0", where)
	}
	if !validUSD(l.DailyBudgetUSD) {
		p.addf("%s.daily_budget_usd must be ≥ 0 and finite", where)
	}
	if l.MaxConcurrentStreams < 0 {
		p.addf("%s.max_concurrent_streams must be ≥ 0", where)
	}
	return pol, l.MaxConcurrentStreams
}

// validUSD rejects negative amounts and also NaN and ±Inf, which YAML spells
// .nan and .inf: a NaN budget never compares as exceeded and a NaN price
// turns every cost metric into NaN.
func validUSD(v float64) bool { return v >= 0 && !math.IsInf(v, 1) }
