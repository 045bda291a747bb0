package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/services/gateway/test/stacktest"
)

// chromiumPath finds Debian's chromium. Without it the browser tests skip
// on a developer machine but fail in CI (CI=true), where a skip would hide
// that the page was never tested.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	msg := "chromium not found: install it with `apt-get install -y chromium` to run the dashboard browser tests"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// newBrowser starts one headless Chromium for a test, with a fresh
// profile. The flags keep it from phoning home: without them Chromium's
// background connections get refused on this network and slow it down.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox,
		chromedp.Headless,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1050),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// Start the browser now, so that its start-up time is not charged to
	// the first page's timeout.
	require.NoError(t, chromedp.Do(ctx))
	return ctx
}

// newTab opens a tab in the browser, bounded in time so that a hung page
// fails the test instead of stalling the run, and records its network
// traffic.
func newTab(t *testing.T, browser context.Context) (context.Context, *traffic) {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel() })
	tr := &traffic{reqs: map[network.RequestID]*exchange{}}
	require.NoError(t, chromedp.Listen(ctx, tr.record))
	return ctx, tr
}

// exchange is one request the page made, as Chromium saw it.
type exchange struct {
	URL, Method     string
	RequestHeaders  map[string]any
	PostData        string
	Status          int64
	ResponseHeaders map[string]any
	Finished        bool
	Failed          string // the network error, e.g. net::ERR_FAILED for a CORS refusal
	Body            string
}

type traffic struct {
	mu    sync.Mutex
	order []network.RequestID
	reqs  map[network.RequestID]*exchange
}

// record runs on chromedp's reader goroutine: it only copies.
func (tr *traffic) record(ev any) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	get := func(id network.RequestID) *exchange {
		x, ok := tr.reqs[id]
		if !ok {
			x = &exchange{}
			tr.reqs[id] = x
			tr.order = append(tr.order, id)
		}
		return x
	}
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		x := get(ev.RequestID)
		x.URL, x.Method, x.RequestHeaders = ev.Request.URL, ev.Request.Method, ev.Request.Headers
		var post strings.Builder
		for _, e := range ev.Request.PostDataEntries {
			post.Write(e.Bytes)
		}
		x.PostData = post.String()
	case *network.EventResponseReceived:
		x := get(ev.RequestID)
		x.Status, x.ResponseHeaders = ev.Response.Status, ev.Response.Headers
	case *network.EventLoadingFinished:
		get(ev.RequestID).Finished = true
	case *network.EventLoadingFailed:
		get(ev.RequestID).Failed = ev.ErrorText
	}
}

// exchanges fetches the bodies of finished responses and returns a copy of
// everything recorded so far.
func (tr *traffic) exchanges(t *testing.T, ctx context.Context) []exchange {
	t.Helper()
	tr.mu.Lock()
	ids := append([]network.RequestID(nil), tr.order...)
	tr.mu.Unlock()
	out := make([]exchange, 0, len(ids))
	for _, id := range ids {
		tr.mu.Lock()
		x := *tr.reqs[id]
		tr.mu.Unlock()
		if x.Finished && x.Status != 0 {
			res, err := chromedp.Call(ctx, network.GetResponseBody, network.GetResponseBodyParams{RequestID: id})
			if err == nil {
				x.Body = string(res.Body)
			}
		}
		out = append(out, x)
	}
	return out
}

// evalJS runs expr in the page and decodes its value.
func evalJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	require.NoError(t, err, "evaluating %s", expr)
	return v
}

// waitFor polls expr until it is truthy, failing with what the page shows.
func waitFor(t *testing.T, ctx context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({answer: document.getElementById("answer")?.dataset.state, error: document.getElementById("error-text")?.textContent, quota: document.getElementById("quota-remaining")?.textContent})`))
		t.Fatalf("waiting for %s: %v (page: %s)", what, err, state)
	}
}

// inkedPixels counts the pixels of canvas id that are not transparent: a
// chart the library drew has thousands, a blank canvas none.
func inkedPixels(t *testing.T, ctx context.Context, id string) float64 {
	t.Helper()
	return evalJS[float64](t, ctx, fmt.Sprintf(`(() => {
		const c = document.getElementById(%q);
		const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
		let n = 0;
		for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
		return n;
	})()`, id))
}

func text(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	return evalJS[string](t, ctx, fmt.Sprintf(`document.getElementById(%q).textContent`, id))
}

// secret returns a recognisable random key, so a leak is unmistakable.
func secret(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 16)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return prefix + hex.EncodeToString(b)
}

// mockStats is the part of the mock's GET /_mock/stats the tests read.
type mockStats struct {
	Requests int64            `json:"requests"`
	ByPath   map[string]int64 `json:"by_path"`
}

func getMockStats(t *testing.T, mock *stacktest.Process) mockStats {
	t.Helper()
	var s mockStats
	getJSONWith(t, mock.Client(), mock.URL+"/_mock/stats", &s)
	return s
}

// mockRequest is one upstream call as the mock recorded it.
type mockRequest struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Headers map[string][]string `json:"headers"`
	Body    json.RawMessage     `json:"body"`
	Status  int                 `json:"status"`
}

func getMockRequests(t *testing.T, mock *stacktest.Process) []mockRequest {
	t.Helper()
	var raw json.RawMessage
	getJSONWith(t, mock.Client(), mock.URL+"/_mock/requests", &raw)
	var list []mockRequest
	if json.Unmarshal(raw, &list) == nil {
		return list
	}
	var wrapped struct {
		Requests []mockRequest `json:"requests"`
	}
	require.NoError(t, json.Unmarshal(raw, &wrapped), "decoding /_mock/requests: %s", raw)
	return wrapped.Requests
}

// artifactPath is where the screenshot goes: artifacts/ under the repo
// root (gitignored), so CI can keep it.
func artifactPath(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(stacktest.RepoRoot(t), "artifacts")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return filepath.Join(dir, name)
}

// header looks a header up case-insensitively: Chromium reports them as
// the page or server spelled them.
func header(h map[string]any, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return fmt.Sprint(v)
		}
	}
	return ""
}
