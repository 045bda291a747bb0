package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/auth"
	"github.com/keyward/keyward/pkg/ledger"
	"github.com/keyward/keyward/pkg/redistest"
	"github.com/keyward/keyward/services/gateway/test/stacktest"
)

const operatorJWTSecret = "e2e-operator-jwt-secret-0123456789abcdef"

// usageRows is the part of /admin/usage's answer the test compares.
type usageRows struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Rows  []usageRow
	Total usageRow `json:"total"`
}

type usageRow struct {
	Day       string  `json:"day"`
	Identity  string  `json:"identity"`
	Model     string  `json:"model"`
	Requests  int64   `json:"requests"`
	CostMicro int64   `json:"cost_micro_usd"`
	CostUSD   float64 `json:"cost_usd"`
}

// adminUsage asks the gateway's admin API directly, as the reference the
// page must agree with.
func adminUsage(t *testing.T, adminURL, token, query string) usageRows {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, adminURL+"/admin/usage?"+query, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	var u usageRows
	require.NoError(t, json.Unmarshal(b, &u), "%s", b)
	return u
}

// usd formats dollars as the page does (ops.js's usd).
func usd(v float64) string {
	if v >= 1 {
		return fmt.Sprintf("$%.2f", v)
	}
	return fmt.Sprintf("$%.4f", v)
}

// thousands formats a count as the page does (en-US grouping).
func thousands(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// callAs sends one Messages call through the gateway as subject sub and
// reads the whole answer (a stream to its end).
func callAs(t *testing.T, gatewayURL, sub, model string, stream bool, outTokens int) {
	t.Helper()
	tok, err := auth.MintHS256([]byte(operatorJWTSecret), auth.MintClaims{Subject: sub, TTL: time.Hour})
	require.NoError(t, err)
	body := fmt.Sprintf(`{"model":%q,"max_tokens":2000,"stream":%t,"messages":[{"role":"user","content":"usage for the operator page [[mock:output_tokens=%d]]"}]}`, model, stream, outTokens)
	req, err := http.NewRequest(http.MethodPost, gatewayURL+"/v1/messages", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
}

// seedPastDays writes earlier days into the ledger the way the gateway's
// settle does (pkg/ledger's writes, in the same Redis), so the charts have
// days to show: a test cannot wait a week for real calls.
func seedPastDays(t *testing.T, redisURL string, today time.Time) {
	t.Helper()
	opt, err := redis.ParseURL(redisURL)
	require.NoError(t, err)
	client := redis.NewClient(opt)
	defer client.Close()
	l, err := ledger.NewRedis(client, "", ledger.DefaultRetentionDays)
	require.NoError(t, err)
	people := []struct {
		id, model string
		perDay    int64 // micro-dollars on the first day; grows day by day
	}{
		{"sub:alice", "claude-sonnet-4-5", 24_000},
		{"sub:alice", "claude-haiku-4-5", 3_000},
		{"sub:bob", "claude-haiku-4-5", 9_000},
		{"sub:carol", "claude-opus-4-5", 18_000},
		{"hmac:ci", "claude-haiku-4-5", 4_500},
		{"sub:dave", "claude-sonnet-4-5", 6_000},
		{"sub:frank", "claude-haiku-4-5", 1_200},
		{"sub:grace", "claude-haiku-4-5", 800},
		{"ip:203.0.113.9", "claude-haiku-4-5", 400},
	}
	for back := 13; back >= 1; back-- {
		day := today.AddDate(0, 0, -back)
		for i, p := range people {
			if (back+i)%4 == 0 { // not everyone works every day
				continue
			}
			cost := p.perDay + int64(13-back)*p.perDay/12
			e := ledger.Entry{Identity: p.id, Model: p.model, Time: day, Counters: ledger.Counters{
				Requests: 2 + int64(back+i)%5, InputTokens: cost / 2, OutputTokens: cost / 12, CostMicro: cost,
			}}
			require.NoError(t, l.Send(context.Background(), l.Record(e)))
		}
	}
}

// TestOperatorPageInBrowser: real Redis, the real gateway with its admin
// API and ledger, the mock upstream and the dashboard. Several identities
// call the gateway; the operator signs in on /ops with the admin token and
// sees their spend per identity and per model over days, the top spenders
// and a CSV export, and the admin token reaches neither the browser (no
// answer, header or cookie holds it) nor any log.
func TestOperatorPageInBrowser(t *testing.T) {
	browser := newBrowser(t)
	s := newStack(t)
	rds := redistest.Start(t)
	adminToken := secret(t, "admin-e2e-")
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(adminToken+"\n"), 0o600))

	gw, adminURL := stacktest.Gateway(t, s.bins[stacktest.GatewayPkg], map[string]string{
		"KEYWARD_UPSTREAM_URL":     s.mock.URL,
		"KEYWARD_UPSTREAM_CA_FILE": s.mock.CAFile,
		"ANTHROPIC_API_KEY":        s.mockKey,
		"KEYWARD_REDIS_URL":        rds.URL(),
		"KEYWARD_JWT_SECRET":       operatorJWTSecret,
		"KEYWARD_AUTH_REQUIRED":    "true",
		"KEYWARD_ADMIN_TOKEN_FILE": tokenFile,
		"KEYWARD_RATE_LIMIT":       "1000/60s",
	})
	today := time.Now().UTC().Truncate(24 * time.Hour)
	seedPastDays(t, rds.URL(), today)
	// Today's spend comes from real calls: JSON and streams, two models.
	calls := []struct {
		sub, model string
		stream     bool
		out        int
	}{
		{"alice", "claude-sonnet-4-5", true, 900}, {"alice", "claude-sonnet-4-5", false, 700}, {"alice", "claude-haiku-4-5", false, 300},
		{"bob", "claude-haiku-4-5", true, 400}, {"bob", "claude-haiku-4-5", false, 200},
		{"carol", "claude-sonnet-4-5", false, 1200}, {"carol", "claude-opus-4-5", true, 600},
		{"erin", "claude-haiku-4-5", true, 150},
	}
	for _, c := range calls {
		callAs(t, gw.URL, c.sub, c.model, c.stream, c.out)
	}
	from := today.AddDate(0, 0, -13).Format(time.DateOnly)
	to := today.Format(time.DateOnly)
	rangeQ := "from=" + from + "&to=" + to
	// The settle writes the ledger after the answer: wait until all of
	// today's calls are booked.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(10 * time.Second); adminUsage(t, adminURL, adminToken, "group_by=identity").Total.Requests != int64(len(calls)); <-tick.C {
		require.True(t, time.Now().Before(deadline), "today's calls never all reached the ledger")
	}
	top := adminUsage(t, adminURL, adminToken, rangeQ+"&group_by=identity&top=15")
	require.GreaterOrEqual(t, len(top.Rows), 6)

	dash := s.dashboard(t, 0, gw.URL, map[string]string{
		"DASHBOARD_ADMIN_URL":        adminURL,
		"DASHBOARD_ADMIN_TOKEN_FILE": tokenFile,
	})
	tab, tr := newTab(t, browser)
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(dash.URL+"/ops")))
	waitFor(t, tab, "the sign-in form", `document.body.dataset.state === "signed-out"`, 20*time.Second)

	t.Run("a wrong token is refused", func(t *testing.T) {
		require.NoError(t, chromedp.Do(tab, chromedp.SetValue(chromedp.ID("admin-token"), "not-the-token"), chromedp.Click(chromedp.ID("sign-in-button"))))
		waitFor(t, tab, "the refusal", `!document.getElementById("sign-in-problem").hidden`, 10*time.Second)
		require.Equal(t, "That is not the gateway's admin token.", text(t, tab, "sign-in-problem"))
		require.True(t, evalJS[bool](t, tab, `document.getElementById("report").hidden`))
	})

	require.NoError(t, chromedp.Do(tab, chromedp.SetValue(chromedp.ID("admin-token"), adminToken), chromedp.Click(chromedp.ID("sign-in-button"))))
	waitFor(t, tab, "the report", `document.body.dataset.state === "report"`, 20*time.Second)

	t.Run("the top spenders are the ledger's", func(t *testing.T) {
		ids := evalJS[[]string](t, tab, `[...document.querySelectorAll("#top-body tr")].map(tr => tr.dataset.identity)`)
		want := make([]string, len(top.Rows))
		for i, r := range top.Rows {
			want[i] = r.Identity
		}
		require.Equal(t, want, ids, "same identities, same order (by spend)")
		require.Contains(t, ids, "sub:erin", "an identity seen only today")
		first := evalJS[[]string](t, tab, `[...document.querySelectorAll("#top-body tr:first-child td")].map(td => td.textContent)`)
		require.Equal(t, top.Rows[0].Identity, first[1])
		require.Equal(t, thousands(top.Rows[0].Requests), first[2])
		require.Equal(t, usd(top.Rows[0].CostUSD), first[6])
		require.Equal(t, thousands(top.Total.Requests), text(t, tab, "total-requests"))
	})

	t.Run("the charts show spend per identity and per model over days", func(t *testing.T) {
		byDayID := adminUsage(t, adminURL, adminToken, rangeQ+"&group_by=day,identity")
		type series struct {
			Label string    `json:"label"`
			Data  []float64 `json:"data"`
		}
		type chart struct {
			Labels   []string `json:"labels"`
			Datasets []series `json:"datasets"`
		}
		read := func(id string) chart {
			raw := evalJS[string](t, tab, fmt.Sprintf(`JSON.stringify((c => ({labels: c.data.labels, datasets: c.data.datasets.map(d => ({label: d.label, data: d.data}))}))(Chart.getChart(%q)))`, id))
			var c chart
			require.NoError(t, json.Unmarshal([]byte(raw), &c))
			return c
		}
		ids := read("chart-identities")
		require.Len(t, ids.Labels, 14, "one bar per day of the range")
		require.Equal(t, today.Format("01-02"), ids.Labels[13])
		got := map[string]float64{}
		for _, d := range ids.Datasets {
			require.Len(t, d.Data, 14)
			for i, v := range d.Data {
				got[ids.Labels[i]+" "+d.Label] = v
			}
		}
		// The seven biggest spenders get their own series, the rest are
		// summed as "others".
		require.Len(t, ids.Datasets, 8)
		require.Equal(t, "others", ids.Datasets[7].Label)
		kept := map[string]bool{}
		for i, r := range top.Rows {
			kept[r.Identity] = i < 7
			require.Equal(t, i < 7, ids.Datasets[min(i, 7)].Label == r.Identity, "series %d", i)
		}
		others := map[string]float64{}
		for _, r := range byDayID.Rows {
			if !kept[r.Identity] {
				others[r.Day[5:]] += r.CostUSD
				continue
			}
			require.InDelta(t, r.CostUSD, got[r.Day[5:]+" "+r.Identity], 1e-6, "%s on %s", r.Identity, r.Day)
		}
		require.NotEmpty(t, others)
		for day, v := range others {
			require.InDelta(t, v, got[day+" others"], 1e-6, "others on %s", day)
		}
		models := read("chart-models")
		var names []string
		for _, d := range models.Datasets {
			names = append(names, d.Label)
		}
		require.ElementsMatch(t, []string{"claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-5"}, names)
		for _, id := range []string{"chart-identities", "chart-models"} {
			inked := inkedPixels(t, tab, id)
			require.Greater(t, inked, 5000.0, "%s has drawn pixels", id)
		}
	})

	t.Run("an identity's limits and budget", func(t *testing.T) {
		require.NoError(t, chromedp.Do(tab, chromedp.Click(chromedp.CSS(`#top-body tr[data-identity="sub:alice"] td.identity`))))
		waitFor(t, tab, "alice's details", `document.body.dataset.identity === "sub:alice"`, 10*time.Second)
		details := text(t, tab, "identity-details")
		alice := adminUsage(t, adminURL, adminToken, "identity=sub:alice&group_by=identity")
		require.Contains(t, details, "Spent today"+usd(alice.Total.CostUSD), "today's spend from the ledger")
		require.Regexp(t, `\d+ of 1000 left per 60 s`, details)
	})

	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	shot := filepath.Join(os.TempDir(), fmt.Sprintf("keyward-dashboard-operator-%d.png", os.Getpid()))
	require.NoError(t, os.WriteFile(shot, png, 0o644))
	require.NoError(t, os.WriteFile(artifactPath(t, "dashboard-operator.png"), png, 0o644))
	t.Logf("screenshot of the operator page: %s", shot)

	t.Run("the CSV export is the ledger's rows as a download", func(t *testing.T) {
		href := evalJS[string](t, tab, `document.getElementById("csv").href`)
		require.Contains(t, href, "format=csv")
		res := evalJS[map[string]any](t, tab, `fetch(document.getElementById("csv").href).then(async r => ({status: r.status, type: r.headers.get("content-type"), disposition: r.headers.get("content-disposition"), body: await r.text()}))`)
		require.Equal(t, 200.0, res["status"])
		require.Equal(t, "text/csv; charset=utf-8", res["type"])
		require.Equal(t, fmt.Sprintf(`attachment; filename="keyward-usage-%s-%s.csv"`, from, to), res["disposition"])
		lines := strings.Split(strings.TrimSpace(res["body"].(string)), "\n")
		full := adminUsage(t, adminURL, adminToken, rangeQ+"&group_by=day,identity,model")
		require.Len(t, lines, len(full.Rows)+1, "a header and one line per day × identity × model")
		require.True(t, strings.HasPrefix(lines[0], "day,identity,model,tier,requests,"), lines[0])
		require.Contains(t, res["body"], to+",sub:erin,claude-haiku-4-5,")
	})

	t.Run("one identity, and a range the other way round", func(t *testing.T) {
		require.NoError(t, chromedp.Do(tab, chromedp.SetValue(chromedp.ID("identity"), "sub:bob"), chromedp.Click(chromedp.ID("apply"))))
		waitFor(t, tab, "bob's report", `document.querySelectorAll("#top-body tr").length === 1 && document.body.dataset.state === "report"`, 10*time.Second)
		bob := adminUsage(t, adminURL, adminToken, rangeQ+"&identity=sub:bob&group_by=identity")
		require.Equal(t, usd(bob.Total.CostUSD), text(t, tab, "total-cost"))
		require.Contains(t, evalJS[string](t, tab, `document.getElementById("csv").href`), "identity=sub%3Abob")

		require.NoError(t, chromedp.Do(tab, chromedp.SetValue(chromedp.ID("from"), to), chromedp.SetValue(chromedp.ID("to"), from), chromedp.Click(chromedp.ID("apply"))))
		waitFor(t, tab, "the refusal", `document.body.dataset.state === "error"`, 10*time.Second)
		require.Equal(t, fmt.Sprintf("to (%s) is before from (%s)", from, to), text(t, tab, "error-text"))
		// (SetValue refuses an empty value.)
		evalJS[bool](t, tab, `(document.getElementById("identity").value = "") === ""`)
		require.NoError(t, chromedp.Do(tab, chromedp.SetValue(chromedp.ID("from"), from), chromedp.SetValue(chromedp.ID("to"), to), chromedp.Click(chromedp.ID("apply"))))
		waitFor(t, tab, "the whole report again", `document.body.dataset.state === "report"`, 10*time.Second)
		require.True(t, evalJS[bool](t, tab, `document.getElementById("error").hidden`))
	})

	t.Run("the admin token never reaches the browser", func(t *testing.T) {
		require.Equal(t, "", evalJS[string](t, tab, `document.cookie`), "the session cookie is HttpOnly")
		require.Equal(t, "", evalJS[string](t, tab, `document.getElementById("admin-token").value`))
		require.Equal(t, 0.0, evalJS[float64](t, tab, `localStorage.length + sessionStorage.length`))
		sawUsage := false
		for _, x := range tr.exchanges(t, tab) {
			if strings.Contains(x.URL, "/ops/api/usage") {
				sawUsage = true
			}
			for k, v := range x.ResponseHeaders {
				require.NotContains(t, fmt.Sprint(k, v), adminToken, "response header of %s", x.URL)
			}
			for k, v := range x.RequestHeaders {
				require.NotContains(t, fmt.Sprint(k, v), adminToken, "request header of %s", x.URL)
			}
			require.NotContains(t, x.Body, adminToken, "answer of %s", x.URL)
			if !strings.HasSuffix(x.URL, "/ops/session") || x.Method != http.MethodPost {
				require.NotContains(t, x.PostData, adminToken, "only the sign-in itself carries the token")
			}
		}
		require.True(t, sawUsage)
		cookies, err := chromedp.Call(tab, network.GetCookies, network.GetCookiesParams{URLs: []string{dash.URL + "/ops/api/usage"}})
		require.NoError(t, err)
		require.Len(t, cookies.Cookies, 1)
		c := cookies.Cookies[0]
		require.Equal(t, "keyward_ops", c.Name)
		require.NotContains(t, c.Value, adminToken)
		require.True(t, c.HTTPOnly)
		require.Equal(t, network.CookieSameSiteStrict, c.SameSite)
		require.Equal(t, "/ops", c.Path)
		// The dashboard's other pages never get the session.
		cookies, err = chromedp.Call(tab, network.GetCookies, network.GetCookiesParams{URLs: []string{dash.URL + "/", dash.URL + "/config.json", dash.URL + "/static/app.js"}})
		require.NoError(t, err)
		require.Empty(t, cookies.Cookies)
	})

	t.Run("a reload keeps the session without the token", func(t *testing.T) {
		require.NoError(t, chromedp.Do(tab, chromedp.Navigate(dash.URL+"/ops")))
		waitFor(t, tab, "the report", `document.body.dataset.state === "report"`, 20*time.Second)
		require.True(t, evalJS[bool](t, tab, `document.getElementById("sign-in").hidden`))
	})

	t.Run("signing out ends the session", func(t *testing.T) {
		require.NoError(t, chromedp.Do(tab, chromedp.Click(chromedp.ID("sign-out"))))
		waitFor(t, tab, "the sign-in form", `document.body.dataset.state === "signed-out"`, 10*time.Second)
		status := evalJS[float64](t, tab, `fetch("/ops/api/usage").then(r => r.status)`)
		require.Equal(t, 401.0, status)
	})

	require.NotContains(t, gw.Logs(), adminToken, "the gateway never logs the admin token")
	require.NotContains(t, dash.Logs(), adminToken, "the dashboard never logs the admin token")
	require.Contains(t, dash.Logs(), `"operator signed in"`)
}
