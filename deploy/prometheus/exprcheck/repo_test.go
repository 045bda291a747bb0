package main

// Checks on the files this project ships: the alert rules and the dashboard
// in the Helm chart, their promtool tests, and the runbook.

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

const (
	shippedRules     = "../../helm/keyward/files/keyward-alerts.yaml"
	shippedDashboard = "../../helm/keyward/files/keyward-dashboard.json"
	promtoolTests    = "../tests"
	runbook          = "../README-runbook.md"
	runbookBaseURL   = "https://github.com/keyward/keyward#runbook-"
)

func TestShippedFilesUseOnlyContractMetrics(t *testing.T) {
	code, stdout, stderr := runCLI("--rules", shippedRules, "--dashboard", shippedDashboard, "--metrics", contract)
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "exprcheck: ok")
}

func TestShippedDashboardShowsEveryContractMetric(t *testing.T) {
	d, err := LoadDashboard(shippedDashboard)
	require.NoError(t, err)
	require.Empty(t, d.Problems)
	exp := loadContract(t)
	res := Checker{Exposition: exp, TargetLabels: defaultTargetLabels}.Check(d.Exprs)
	require.Empty(t, res.Problems)
	var missing []string
	for name := range exp {
		if _, ok := res.Uses[name]; !ok {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	require.Empty(t, missing, "metrics of the contract that no dashboard panel shows")
}

func TestShippedDashboardLayout(t *testing.T) {
	d, err := LoadDashboard(shippedDashboard)
	require.NoError(t, err)
	require.NotEmpty(t, d.UID)
	require.NotEmpty(t, d.Title)

	allowedUnits := map[string]bool{"reqps": true, "ops": true, "percentunit": true, "s": true, "currencyUSD": true, "short": true}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	rows := 0
	for _, p := range d.AllPanels {
		if p.Type == "row" {
			rows++
			require.Equal(t, 24, p.GridPos.W, "row %q spans the width", p.Title)
		} else {
			require.True(t, allowedUnits[p.FieldConfig.Defaults.Unit], "panel %q unit %q", p.Title, p.FieldConfig.Defaults.Unit)
			require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		}
		// Overlapping panels render on top of each other in Grafana.
		for x := p.GridPos.X; x < p.GridPos.X+p.GridPos.W; x++ {
			for y := p.GridPos.Y; y < p.GridPos.Y+p.GridPos.H; y++ {
				other, clash := taken[cell{x, y}]
				require.False(t, clash, "panels %q and %q overlap at %d,%d", other, p.Title, x, y)
				taken[cell{x, y}] = p.Title
			}
		}
	}
	require.GreaterOrEqual(t, rows, 5, "panels are grouped in rows")
}

// alertRule is what the checks below need of an alerting rule.
type alertRule struct {
	Alert       string
	Labels      map[string]string
	Annotations map[string]string
}

func shippedAlerts(t *testing.T) []alertRule {
	t.Helper()
	rs, err := LoadRules(shippedRules)
	require.NoError(t, err)
	var alerts []alertRule
	for _, g := range rs.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts = append(alerts, alertRule{Alert: r.Alert, Labels: r.Labels, Annotations: r.Annotations})
			}
		}
	}
	require.NotEmpty(t, alerts)
	return alerts
}

// githubSlug is the anchor GitHub gives a Markdown heading.
func githubSlug(heading string) string {
	s := strings.ToLower(strings.TrimSpace(heading))
	s = regexp.MustCompile(`[^\p{L}\p{N}\s_-]`).ReplaceAllString(s, "")
	return strings.ReplaceAll(s, " ", "-")
}

func TestShippedAlertsAreComplete(t *testing.T) {
	md, err := os.ReadFile(runbook)
	require.NoError(t, err)
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#{1,6} (.+)$`).FindAllStringSubmatch(string(md), -1) {
		anchors[githubSlug(m[1])] = true
	}
	want := []string{
		"KeywardDown", "KeywardNotScraped", "KeywardReplicaDown", "KeywardHighErrorRate", "KeywardUpstreamErrors", "KeywardUpstreamKeyRejected", "KeywardCircuitBreakerOpen",
		"KeywardHighLatency", "KeywardTokenSpendHigh", "KeywardDailyBudgetBurn", "KeywardGlobalBudgetExhausted",
		"KeywardRateLimitBackendDown", "KeywardAuthFailureSpike", "KeywardRedisMemoryHigh",
	}
	var names []string
	for _, a := range shippedAlerts(t) {
		names = append(names, a.Alert)
		t.Run(a.Alert, func(t *testing.T) {
			require.Regexp(t, `^Keyward[A-Z][A-Za-z0-9]+$`, a.Alert)
			require.Contains(t, []string{"critical", "warning"}, a.Labels["severity"])
			require.NotEmpty(t, a.Annotations["summary"])
			require.NotEmpty(t, a.Annotations["description"])
			anchor := "runbook-" + strings.ToLower(a.Alert)
			require.Equal(t, runbookBaseURL+strings.ToLower(a.Alert), a.Annotations["runbook_url"])
			require.True(t, anchors[anchor], "%s has no runbook section: add a heading \"Runbook: %s\" to %s", a.Alert, a.Alert, runbook)
		})
	}
	require.ElementsMatch(t, want, names, "the alerts issue 6 asks for, plus availability")
}

// promtoolTestFile is the part of a `promtool test rules` file read here.
type promtoolTestFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			Alertname string           `yaml:"alertname"`
			ExpAlerts []map[string]any `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func TestEveryAlertHasFiringAndQuietPromtoolCases(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(promtoolTests, "*_test.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	firing, quiet := map[string]int{}, map[string]int{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		var tf promtoolTestFile
		dec := yaml.NewDecoder(strings.NewReader(string(data)))
		require.NoError(t, dec.Decode(&tf), f)
		require.Equal(t, []string{"../../helm/keyward/files/keyward-alerts.yaml"}, tf.RuleFiles, "%s tests the shipped rule file", f)
		for _, tc := range tf.Tests {
			// A quiet case is a test (input series) in which the alert never
			// fires; "not yet, still pending" inside a firing case does not count.
			fires := map[string]bool{}
			for _, art := range tc.AlertRuleTest {
				fires[art.Alertname] = fires[art.Alertname] || len(art.ExpAlerts) > 0
				for _, ea := range art.ExpAlerts {
					// Exact labels and annotations, not just "something fired".
					require.Contains(t, ea, "exp_labels", "%s: %s", f, tc.Name)
					require.Contains(t, ea, "exp_annotations", "%s: %s", f, tc.Name)
				}
			}
			for name, fired := range fires {
				if fired {
					firing[name]++
				} else {
					quiet[name]++
				}
			}
		}
	}
	for _, a := range shippedAlerts(t) {
		require.Positive(t, firing[a.Alert], "%s has no promtool case where it fires", a.Alert)
		require.Positive(t, quiet[a.Alert], "%s has no promtool case where it stays quiet", a.Alert)
	}
}

func TestGithubSlug(t *testing.T) {
	require.Equal(t, "runbook-keywardhigherrorrate", githubSlug("Runbook: KeywardHighErrorRate"))
	require.Equal(t, "what-to-do-now", githubSlug("What to do, now?"))
}
