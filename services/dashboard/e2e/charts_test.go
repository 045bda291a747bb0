package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/services/gateway/test/stacktest"
)

// TestChartsInBrowser: the page draws the sample dataset's four charts with
// the bundled chart library under the strict CSP, "Ask Claude about this
// chart" sends that chart's numbers through the typed analytics query (the
// mock quotes the prompt back, so the numbers show in the answer), the
// answer's Markdown becomes elements but never markup from the answer, and a
// page from a foreign origin still gets nothing.
func TestChartsInBrowser(t *testing.T) {
	browser := newBrowser(t)
	s := newStack(t)
	dashPort := stacktest.FreePort(t)
	// The MRR query's answers are shared through the answer cache.
	cfg := filepath.Join(t.TempDir(), "keyward.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("analytics:\n  mrr_analysis: {cache_ttl: 10m}\n  churn_analysis: {}\n  conversion_analysis: {}\n  cohort_analysis: {}\n"), 0o600))
	gw := s.gateway(t, []string{origin(dashPort)}, map[string]string{"KEYWARD_CONFIG": cfg})
	dash := s.dashboard(t, dashPort, gw.URL, nil)

	tab, tr := newTab(t, browser)
	openDashboard(t, tab, dash.URL)
	waitFor(t, tab, "the charts to be drawn", `document.body.dataset.charts === "drawn"`, 10*time.Second)

	// Each canvas has ink on it: the library ran (a CSP refusal or a
	// missing file would leave them blank).
	for _, id := range []string{"chart-mrr", "chart-churn", "chart-funnel", "chart-cohorts"} {
		inked := inkedPixels(t, tab, id)
		require.Greater(t, inked, 2000.0, "%s has drawn pixels", id)
	}
	require.Equal(t, 4.0, evalJS[float64](t, tab, `Object.keys(window.Chart.instances).length`))

	t.Run("asking about the funnel sends its numbers", func(t *testing.T) {
		before := len(getMockRequests(t, s.mock))
		answer := clickAndWaitForAnswer(t, tab, "ask-chart-funnel")
		require.Contains(t, answer, "Mock answer from")
		for _, n := range []string{"Visitors,48210", "Signups,5320", "Trials,2184", "Paid,612", "Expansion,139"} {
			require.Contains(t, answer, n, "the mock quoted the funnel's numbers back")
		}
		require.Contains(t, text(t, tab, "answer-question"), "Conversion funnel")

		var sent string
		for _, x := range tr.exchanges(t, tab) {
			if strings.HasSuffix(x.URL, "/api/analytics-query") && x.Method == "POST" {
				sent = x.PostData
			}
		}
		require.Contains(t, sent, `"query_type":"conversion_analysis"`)
		require.Contains(t, sent, `"data":{"funnel":[{"stage":"Visitors","count":48210}`)

		reqs := getMockRequests(t, s.mock)
		require.Len(t, reqs, before+1, "one upstream call")
		var up struct {
			Messages []struct {
				Content string `json:"content"`
			} `json:"messages"`
		}
		var raw string // the mock records the body as a JSON string
		require.NoError(t, json.Unmarshal(reqs[len(reqs)-1].Body, &raw))
		require.NoError(t, json.Unmarshal([]byte(raw), &up))
		require.Contains(t, up.Messages[0].Content, "<data name=\"funnel\" rows=\"5\">\nstage,count\nVisitors,48210\n")
	})

	t.Run("asking about the MRR trend sends its numbers", func(t *testing.T) {
		answer := clickAndWaitForAnswer(t, tab, "ask-chart-mrr")
		require.Equal(t, "miss", evalJS[string](t, tab, `document.getElementById("answer").dataset.cache`), "the first ask fills the cache")
		for _, n := range []string{"2025-12,61230.4", "2026-01,63890.15", "2026-02,66102.8", "2026-03,68944", "2026-04,71210.55", "2026-05,72980.3",
			"2026-06,74115.9", "2026-07,77420.25", "2026-08,80310.6", "2026-09,83672.45", "2026-10,87234.56", "2026-11,92148.74"} {
			require.Contains(t, answer, n)
		}
		// The charts, and the answer to the last one asked about.
		png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		shot := filepath.Join(os.TempDir(), fmt.Sprintf("keyward-dashboard-charts-%d.png", os.Getpid()))
		require.NoError(t, os.WriteFile(shot, png, 0o644))
		require.NoError(t, os.WriteFile(artifactPath(t, "dashboard-charts.png"), png, 0o644))
		t.Logf("screenshot of the charts: %s", shot)

	})

	t.Run("the same question from another browser is a cache hit with no upstream call", func(t *testing.T) {
		before := getMockStats(t, s.mock).ByPath["/v1/messages"]
		other := newBrowser(t)
		otab, _ := newTab(t, other)
		openDashboard(t, otab, dash.URL)
		waitFor(t, otab, "the charts to be drawn", `document.body.dataset.charts === "drawn"`, 10*time.Second)
		answer := clickAndWaitForAnswer(t, otab, "ask-chart-mrr")
		require.Contains(t, answer, "2026-11,92148.74")
		require.Equal(t, "hit", evalJS[string](t, otab, `document.getElementById("answer").dataset.cache`))
		require.Contains(t, text(t, otab, "answer-meta"), "cached answer")
		require.Equal(t, before, getMockStats(t, s.mock).ByPath["/v1/messages"], "no upstream call for the hit")
	})

	t.Run("the answer's Markdown is rendered as elements, never as markup", func(t *testing.T) {
		q := `**bold** <img src=x onerror="window.pwned=1"> <b>raw</b>`
		// An empty context keeps the question inside the mock's 300-byte quote.
		require.NoError(t, chromedp.Do(tab, chromedp.SetValue(chromedp.ID("question"), q), chromedp.SetValue(chromedp.ID("context"), "{}")))
		answer := clickAndWaitForAnswer(t, tab, "ask")
		require.Contains(t, answer, `<img src=x onerror="window.pwned=1">`, "the tag arrives as text")
		require.Equal(t, 0.0, evalJS[float64](t, tab, `document.querySelectorAll("#answer img, #answer b, #answer script").length`))
		require.Equal(t, "bold", evalJS[string](t, tab, `document.querySelector("#answer strong")?.textContent || ""`))
		require.False(t, evalJS[bool](t, tab, `window.pwned === 1`))
	})

	t.Run("a foreign origin asking about a chart gets nothing", func(t *testing.T) {
		rogue := s.dashboard(t, 0, gw.URL, nil)
		before := getMockStats(t, s.mock).Requests
		rtab, _ := newTab(t, browser)
		openDashboard(t, rtab, rogue.URL)
		waitFor(t, rtab, "the charts to be drawn", `document.body.dataset.charts === "drawn"`, 10*time.Second)
		require.NoError(t, chromedp.Do(rtab, chromedp.Click(chromedp.ID("ask-chart-mrr"))))
		waitFor(t, rtab, "the ask to fail", `document.getElementById("answer").dataset.state === "error"`, 15*time.Second)
		require.NotContains(t, text(t, rtab, "answer"), "Mock answer")
		require.Equal(t, before, getMockStats(t, s.mock).Requests, "nothing reached the upstream")
	})
}
