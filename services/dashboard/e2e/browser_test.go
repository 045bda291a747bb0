package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/services/gateway/test/stacktest"
)

// getJSONWith GETs url with client (a TLS process's, say) and decodes its
// JSON answer into out.
func getJSONWith(t *testing.T, client *http.Client, url string, out any) {
	t.Helper()
	resp, err := client.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", url, b)
	require.NoError(t, json.Unmarshal(b, out), "GET %s: %s", url, b)
}

// stack is one mock upstream and the binaries to start gateways and
// dashboards against it.
type stack struct {
	bins    map[string]string
	mock    *stacktest.Process
	mockKey string
}

func newStack(t *testing.T) *stack {
	t.Helper()
	bins := binaries(t)
	// sk-ant- makes it look like the real thing, so any redaction that
	// keys on the prefix is exercised too.
	key := secret(t, "sk-ant-api03-e2e-")
	return &stack{bins: bins, mock: stacktest.Mock(t, bins[stacktest.MockPkg], key), mockKey: key}
}

// gateway starts a gateway in front of the mock that lets the given
// browser origins call it.
func (s *stack) gateway(t *testing.T, origins []string, extra map[string]string) *stacktest.Process {
	t.Helper()
	env := map[string]string{
		"KEYWARD_UPSTREAM_URL":     s.mock.URL,
		"KEYWARD_UPSTREAM_CA_FILE": s.mock.CAFile,
		"ANTHROPIC_API_KEY":        s.mockKey,
		"KEYWARD_CORS_ORIGINS":     strings.Join(origins, ","),
		"KEYWARD_RATE_LIMIT":       "30/60s",
	}
	for k, v := range extra {
		env[k] = v
	}
	gw, _ := stacktest.Gateway(t, s.bins[stacktest.GatewayPkg], env)
	return gw
}

// dashboard starts a dashboard on port (0: any) that points the page at gatewayURL.
func (s *stack) dashboard(t *testing.T, port int, gatewayURL string, extra map[string]string) *stacktest.Process {
	t.Helper()
	env := map[string]string{"DASHBOARD_GATEWAY_URL": gatewayURL}
	for k, v := range extra {
		env[k] = v
	}
	return stacktest.Dashboard(t, s.bins[stacktest.DashboardPkg], port, env)
}

func origin(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

// openDashboard loads the page and waits until it has talked to the gateway.
func openDashboard(t *testing.T, tab context.Context, url string) {
	t.Helper()
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(url)))
	waitFor(t, tab, "the page to finish loading", `document.body.dataset.ready === "true"`, 20*time.Second)
}

func clickAndWaitForAnswer(t *testing.T, tab context.Context, button string) string {
	t.Helper()
	require.NoError(t, chromedp.Do(tab, chromedp.Click(chromedp.ID(button))))
	waitFor(t, tab, "the answer to finish", `["done","error"].includes(document.getElementById("answer").dataset.state)`, 30*time.Second)
	require.Equal(t, "done", evalJS[string](t, tab, `document.getElementById("answer").dataset.state`),
		"the page shows an error: %s", text(t, tab, "error-text"))
	return text(t, tab, "answer")
}

// TestDashboardInBrowser drives the real page in headless Chromium against
// the real gateway and mock upstream: questions stream in, analytics
// queries run, the quota goes down, foreign origins are refused by the
// browser, errors are explained in plain words, and the API key never
// reaches the browser.
func TestDashboardInBrowser(t *testing.T) {
	browser := newBrowser(t)
	s := newStack(t)

	dashPort := stacktest.FreePort(t)
	gw := s.gateway(t, []string{origin(dashPort)}, nil)
	dash := s.dashboard(t, dashPort, gw.URL, nil)

	t.Run("asks, streams, runs analytics and counts down the quota", func(t *testing.T) {
		tab, tr := newTab(t, browser)
		openDashboard(t, tab, dash.URL)
		require.Equal(t, "Gateway connected", text(t, tab, "gateway-status-text"))
		require.Equal(t, "30", text(t, tab, "quota-limit"))
		before := text(t, tab, "quota-remaining")
		require.Equal(t, "30", before)
		upstreamBefore := getMockStats(t, s.mock).ByPath["/v1/messages"]

		// The question and the seed's MRR context go out as they are shown.
		// Short enough to survive the mock's 300-byte quote after the context.
		question := "What is my MRR?"
		require.NoError(t, chromedp.Do(tab, chromedp.SetValue(chromedp.ID("question"), question)))
		answer := clickAndWaitForAnswer(t, tab, "ask")
		// The mock quotes the prompt it got: the answer proves the round trip
		// browser → gateway → mock → gateway → browser, context included.
		require.Contains(t, answer, "Mock answer from")
		require.Contains(t, answer, "92148.74")
		require.Contains(t, answer, question)
		require.Regexp(t, `\d+ tokens in · \d+ out · request kw_`, text(t, tab, "answer-meta"))

		// It was streamed: the page asked for SSE and got event-stream.
		var sawStream bool
		for _, x := range tr.exchanges(t, tab) {
			if strings.HasSuffix(x.URL, "/api/query") && x.Method == "POST" {
				require.Contains(t, x.PostData, `"stream":true`)
				require.Contains(t, x.PostData, `"current_mrr":92148.74`)
				require.Contains(t, header(x.ResponseHeaders, "Content-Type"), "text/event-stream")
				sawStream = true
			}
		}
		require.True(t, sawStream, "no POST /api/query seen by the browser")

		waitFor(t, tab, "the quota to drop to 29", `document.getElementById("quota-remaining").textContent === "29"`, 10*time.Second)

		// An analytics query from the catalog, with a chosen parameter.
		require.NoError(t, chromedp.Do(tab,
			chromedp.Click(chromedp.ID("qt-mrr_analysis")),
			chromedp.SetValue(chromedp.ID("param-time_period"), "last_90_days"),
		))
		answer = clickAndWaitForAnswer(t, tab, "run-analytics")
		require.Contains(t, answer, "Mock answer from")
		require.Contains(t, text(t, tab, "answer-question"), "MRR analysis")
		waitFor(t, tab, "the quota to drop to 28", `document.getElementById("quota-remaining").textContent === "28"`, 10*time.Second)

		// The gateway made exactly two upstream calls, with the server key
		// it holds, and the analytics prompt carried the chosen period.
		require.Equal(t, upstreamBefore+2, getMockStats(t, s.mock).ByPath["/v1/messages"])
		reqs := getMockRequests(t, s.mock)
		require.NotEmpty(t, reqs)
		last := reqs[len(reqs)-1]
		require.Contains(t, string(last.Body), "last_90_days")

		png, err := chromedp.Run(tab, chromedp.FullScreenshot(100)) // 100 gives PNG, less gives JPEG
		require.NoError(t, err)
		shot := artifactPath(t, "dashboard.png")
		require.NoError(t, os.WriteFile(shot, png, 0o644))
		t.Logf("screenshot of the dashboard: %s", shot)

		// Nothing the browser saw, sent or received carries the API key:
		// not the page source, not any request or response, header or body.
		html := evalJS[string](t, tab, `document.documentElement.outerHTML`)
		require.NotContains(t, html, s.mockKey)
		xs := tr.exchanges(t, tab)
		require.GreaterOrEqual(t, len(xs), 8, "page, script, style, config and gateway calls")
		for _, x := range xs {
			dump := fmt.Sprintf("%s %s %v %s %d %v %s", x.Method, x.URL, x.RequestHeaders, x.PostData, x.Status, x.ResponseHeaders, x.Body)
			require.NotContains(t, dump, s.mockKey, "the API key reached the browser in %s %s", x.Method, x.URL)
			for name := range x.RequestHeaders {
				require.NotEqual(t, "x-api-key", strings.ToLower(name), "the page never sends an API-key header: %s %s", x.Method, x.URL)
			}
		}
	})

	t.Run("a page from an origin the gateway does not allow cannot read answers", func(t *testing.T) {
		rogue := s.dashboard(t, 0, gw.URL, nil) // same page, another port: another origin
		statsBefore := getMockStats(t, s.mock)
		logBefore := len(gw.Logs())

		tab, _ := newTab(t, browser)
		openDashboard(t, tab, rogue.URL)
		require.Contains(t, text(t, tab, "error-text"), "The gateway at "+gw.URL+" is not reachable")
		require.Equal(t, "Gateway unreachable", text(t, tab, "gateway-status-text"))

		// The page's own code path, and a direct fetch, both get nothing.
		require.NoError(t, chromedp.Do(tab, chromedp.Click(chromedp.ID("ask"))))
		waitFor(t, tab, "the ask to fail", `document.getElementById("answer").dataset.state === "error"`, 15*time.Second)
		got := evalJS[string](t, tab, fmt.Sprintf(`fetch(%q, {method: "POST", headers: {"Content-Type": "application/json"},
			body: JSON.stringify({question: "leak?", context: {}})}).then(r => r.text().then(b => "read:" + b), e => "blocked:" + e.name)`, gw.URL+"/api/query"))
		require.Equal(t, "blocked:TypeError", got)
		got = evalJS[string](t, tab, fmt.Sprintf(`fetch(%q).then(r => r.text().then(b => "read:" + b), e => "blocked:" + e.name)`, gw.URL+"/api/rate-limit-status"))
		require.Equal(t, "blocked:TypeError", got, "even a simple GET's answer must stay unreadable")

		// The gateway refused every call from that origin before doing any
		// work: no upstream call, and only 403s in its access log.
		require.Equal(t, statsBefore.Requests, getMockStats(t, s.mock).Requests)
		// The gateway batches its log lines (flushed at least every 100 ms).
		refusedCalls := func() int {
			refused := 0
			for _, l := range strings.Split(strings.TrimSpace(gw.Logs()[logBefore:]), "\n") {
				var entry struct {
					Msg    string `json:"msg"`
					Route  string `json:"route"`
					Status int    `json:"status"`
				}
				if json.Unmarshal([]byte(l), &entry) != nil || entry.Msg != "request" {
					continue
				}
				require.Equal(t, http.StatusForbidden, entry.Status, "gateway answered a foreign origin: %s", l)
				refused++
			}
			return refused
		}
		require.Eventually(t, func() bool { return refusedCalls() >= 4 }, 3*time.Second, 50*time.Millisecond,
			"health, status, catalog and the POSTs' preflights are all refused")
	})

	t.Run("explains an unreachable gateway in plain words", func(t *testing.T) {
		deadPort := stacktest.FreePort(t)
		lonely := s.dashboard(t, 0, origin(deadPort), nil)
		tab, _ := newTab(t, browser)
		openDashboard(t, tab, lonely.URL)
		require.Equal(t, fmt.Sprintf("The gateway at http://127.0.0.1:%d is not reachable. Check that it is running and that it allows this page's origin (%s).", deadPort, lonely.URL),
			text(t, tab, "error-text"))
		require.Equal(t, "–", text(t, tab, "quota-remaining"))
	})

	t.Run("explains the rate limit in plain words", func(t *testing.T) {
		port := stacktest.FreePort(t)
		tight := s.gateway(t, []string{origin(port)}, map[string]string{"KEYWARD_RATE_LIMIT": "2/60s"})
		d := s.dashboard(t, port, tight.URL, nil)
		tab, _ := newTab(t, browser)
		openDashboard(t, tab, d.URL)
		require.Equal(t, "2", text(t, tab, "quota-limit"))
		clickAndWaitForAnswer(t, tab, "ask")
		clickAndWaitForAnswer(t, tab, "ask")
		waitFor(t, tab, "the quota to reach 0", `document.getElementById("quota-remaining").textContent === "0"`, 10*time.Second)

		require.NoError(t, chromedp.Do(tab, chromedp.Click(chromedp.ID("ask"))))
		waitFor(t, tab, "the refusal", `document.getElementById("answer").dataset.state === "error"`, 15*time.Second)
		msg := text(t, tab, "error-text")
		m := regexp.MustCompile(`^You've hit the limit of 2 questions per minute; try again in (\d+) s\.$`).FindStringSubmatch(msg)
		require.NotNil(t, m, "error text: %q", msg)
		secs, _ := strconv.Atoi(m[1])
		require.True(t, secs >= 1 && secs <= 60, "wait %d s", secs)
		require.Regexp(t, `^All 2 back in \d+ s`, text(t, tab, "quota-reset"))

		png, err := chromedp.Run(tab, chromedp.CaptureScreenshot())
		require.NoError(t, err)
		shot := artifactPath(t, "dashboard-rate-limited.png")
		require.NoError(t, os.WriteFile(shot, png, 0o644))
		t.Logf("screenshot of the rate-limited dashboard: %s", shot)
	})

	t.Run("with auth required, the page needs the dashboard's token", func(t *testing.T) {
		jwtSecret := secret(t, "dev-jwt-secret-")
		withPort, withoutPort, wrongPort := stacktest.FreePort(t), stacktest.FreePort(t), stacktest.FreePort(t)
		locked := s.gateway(t, []string{origin(withPort), origin(withoutPort), origin(wrongPort)}, map[string]string{
			"KEYWARD_AUTH_REQUIRED": "true",
			"KEYWARD_JWT_SECRET":    jwtSecret,
		})

		// Without a secret the dashboard cannot sign the page in.
		without := s.dashboard(t, withoutPort, locked.URL, nil)
		tab, _ := newTab(t, browser)
		openDashboard(t, tab, without.URL)
		require.Contains(t, text(t, tab, "error-text"), "Sign-in needed: this gateway only answers signed-in callers")

		// With the wrong secret its tokens are refused, and the page says so.
		wrong := s.dashboard(t, wrongPort, locked.URL, map[string]string{"DASHBOARD_JWT_SECRET": secret(t, "not-the-gateway-secret-")})
		tab, _ = newTab(t, browser)
		openDashboard(t, tab, wrong.URL)
		require.Contains(t, text(t, tab, "error-text"), "Sign-in needed: the gateway did not accept this dashboard's session")

		// With it, the page gets a short-lived token and everything works.
		with := s.dashboard(t, withPort, locked.URL, map[string]string{"DASHBOARD_JWT_SECRET": jwtSecret})
		tab, tr := newTab(t, browser)
		openDashboard(t, tab, with.URL)
		require.Equal(t, "", text(t, tab, "error-text"))
		require.Equal(t, "Signed in as dashboard:127.0.0.1", text(t, tab, "session"))
		require.Equal(t, "30", text(t, tab, "quota-remaining"))
		answer := clickAndWaitForAnswer(t, tab, "ask")
		require.Contains(t, answer, "Mock answer from")
		waitFor(t, tab, "the quota to drop to 29", `document.getElementById("quota-remaining").textContent === "29"`, 10*time.Second)

		// The gateway got a bearer token, never the dashboard's secret, and
		// nothing the browser handled carries the API key.
		var bearer int
		for _, x := range tr.exchanges(t, tab) {
			dump := fmt.Sprintf("%v %s %v %s", x.RequestHeaders, x.PostData, x.ResponseHeaders, x.Body)
			require.NotContains(t, dump, s.mockKey)
			require.NotContains(t, dump, jwtSecret)
			if strings.HasPrefix(x.URL, locked.URL+"/api/") && x.Method != "OPTIONS" {
				require.Regexp(t, `^Bearer ey`, header(x.RequestHeaders, "Authorization"), "%s %s", x.Method, x.URL)
				bearer++
			}
		}
		require.GreaterOrEqual(t, bearer, 3)
	})
}
