package config

import (
	"sort"
	"strings"

	"github.com/keyward/keyward/pkg/anthropic"
)

// priceYAML is one row of the "prices" section: USD per million tokens,
// plus the optional fast-mode multiplier and long-context tier.
type priceYAML struct {
	Input          float64 `yaml:"input"`
	CacheWrite5m   float64 `yaml:"cache_write_5m"`
	CacheWrite1h   float64 `yaml:"cache_write_1h"`
	CacheRead      float64 `yaml:"cache_read"`
	Output         float64 `yaml:"output"`
	FastMultiplier float64 `yaml:"fast_multiplier"`
	LongContext    *struct {
		FromTokens   int64   `yaml:"from_tokens"`
		Input        float64 `yaml:"input"`
		CacheWrite5m float64 `yaml:"cache_write_5m"`
		CacheWrite1h float64 `yaml:"cache_write_1h"`
		CacheRead    float64 `yaml:"cache_read"`
		Output       float64 `yaml:"output"`
	} `yaml:"long_context"`
}

func applyPrices(c *Config, rows map[string]priceYAML, p *problems) {
	models := make([]string, 0, len(rows))
	for m := range rows {
		models = append(models, m)
	}
	sort.Strings(models)
	for _, model := range models {
		pr := rows[model]
		price := anthropic.Price{Input: pr.Input, CacheWrite5m: pr.CacheWrite5m, CacheWrite1h: pr.CacheWrite1h, CacheRead: pr.CacheRead, Output: pr.Output, FastMultiplier: pr.FastMultiplier}
		if lc := pr.LongContext; lc != nil {
			price.LongContext = &anthropic.Price{Input: lc.Input, CacheWrite5m: lc.CacheWrite5m, CacheWrite1h: lc.CacheWrite1h, CacheRead: lc.CacheRead, Output: lc.Output}
			price.LongContextThreshold = lc.FromTokens
		}
		if !validUSD(pr.Input) || !validUSD(pr.Output) || !validUSD(pr.CacheRead) || !validUSD(pr.CacheWrite5m) || !validUSD(pr.CacheWrite1h) {
			p.addf("prices.%s: prices must be ≥ 0 and finite", model)
			continue
		}
		if err := price.Validate(); err != nil {
			p.addf("prices.%s: %s", model, strings.ReplaceAll(err.Error(), "\n", "; "))
			continue
		}
		c.Prices[model] = price
	}
}

// checkPrices refuses an allowed model the gateway cannot price: it would
// be served at $0, outside every budget.
func (c *Config) checkPrices(p *problems) {
	for _, m := range c.AllowedModels {
		if _, ok := c.Prices.Lookup(m); !ok {
			p.addf("allowed model %q has no price: add it under prices in KEYWARD_CONFIG (input, cache_write_5m, cache_write_1h, cache_read, output in USD per million tokens) or remove it from the allowed models", m)
		}
	}
}
