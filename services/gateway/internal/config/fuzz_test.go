package config

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward/pkg/ratelimit"
)

// FuzzLoadYAML feeds arbitrary bytes to Load as the KEYWARD_CONFIG file.
// Whatever the file holds, Load must not panic; a refusal must be one
// configuration error (the "invalid configuration (N problems)" report an
// operator reads at start-up) that never repeats the API key; and a config it
// accepts must be usable: a positive request limit, a default model among the
// allowed ones, max_tokens within the cap, a positive in-flight cap, and tiers
// that inherit a request limit.
//
// Seed corpus: testdata/fuzz/FuzzLoadYAML. Run:
//
//	go test -run '^$' -fuzz '^FuzzLoadYAML$' -fuzztime 30s ./internal/config/
func FuzzLoadYAML(f *testing.F) {
	for _, name := range []string{"full.yaml", "bad-values.bad.yaml", "unknown-key.bad.yaml", "not-yaml.bad.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	const secret = "sk-ant-fuzz-SECRET-do-not-print-0123456789"
	f.Fuzz(func(t *testing.T, doc []byte) {
		path := filepath.Join(t.TempDir(), "keyward.yaml")
		if err := os.WriteFile(path, doc, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(MapEnv(map[string]string{"ANTHROPIC_API_KEY": secret, "KEYWARD_CONFIG": path}), "fuzz")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "invalid configuration (") {
				t.Fatalf("not a configuration report: %v", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatal("the API key appears in the configuration error")
			}
			return
		}
		switch {
		case c.Default.Requests.Rate < 1 || c.Default.Requests.Period <= 0:
			t.Fatalf("accepted without a usable request limit: %+v", c.Default.Requests)
		case !slices.Contains(c.AllowedModels, c.DefaultModel):
			t.Fatalf("default model %q not among the allowed %q", c.DefaultModel, c.AllowedModels)
		case c.QueryMaxTokens < 1 || (c.MaxTokensFor(c.DefaultModel) > 0 && c.QueryMaxTokens > c.MaxTokensFor(c.DefaultModel)):
			t.Fatalf("query_max_tokens %d outside 1..%d", c.QueryMaxTokens, c.MaxTokensFor(c.DefaultModel))
		case c.MaxInflight < 1:
			t.Fatalf("max_inflight %d", c.MaxInflight)
		case c.SystemPrompt == "":
			t.Fatal("empty system prompt accepted")
		case !usable(c.SpendAlertPerHour):
			t.Fatalf("alerts.spend_usd_per_hour %v accepted", c.SpendAlertPerHour)
		}
		for name, tier := range c.Tiers {
			if name == "" || tier.Requests.Rate < 1 {
				t.Fatalf("tier %q without a request limit: %+v", name, tier.Requests)
			}
		}
		for name, pol := range map[string]ratelimit.Policy{"limits": c.Default} {
			if !usable(pol.DailyBudgetUSD) || !usable(pol.GlobalDailyUSD) || pol.TokensPerMinute < 0 {
				t.Fatalf("%s: unusable budget accepted: %+v", name, pol)
			}
		}
		for name, pol := range c.Tiers {
			if !usable(pol.DailyBudgetUSD) || pol.TokensPerMinute < 0 {
				t.Fatalf("tiers.%s: unusable budget accepted: %+v", name, pol)
			}
		}
		for model, p := range c.Prices {
			// A NaN or infinite price would turn every cost, budget and
			// spend metric of that model into NaN/Inf.
			if !usable(p.Input) || !usable(p.Output) || !usable(p.CacheRead) || !usable(p.CacheWrite5m) || !usable(p.CacheWrite1h) {
				t.Fatalf("unusable price accepted for %q: %+v", model, p)
			}
		}
	})
}

// usable reports a money amount a limit or a metric can work with: finite
// and not negative.
func usable(v float64) bool { return v >= 0 && !math.IsInf(v, 0) && !math.IsNaN(v) }
