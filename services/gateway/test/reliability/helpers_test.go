//go:build reliability

// Package reliability is keyward's fault-injection suite: real gateway,
// mock upstream, redis-server and redis-sentinel processes on loopback,
// broken on purpose (killed, slowed, signalled, starved) while traffic runs.
// Every scenario is bounded in time and request count, asserts what a user
// of the gateway would notice, and logs one or more "figure:" lines that
// `make test-reliability` collects.
//
// Run: go test -tags reliability -count=1 -v -run Reliability ./services/gateway/test/reliability/
package reliability

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/services/gateway/internal/testenv"
)

const queryBody = `{"question":"How is churn?","context":{"churned":12}}`

// queryWith returns an /api/query body whose question carries mock
// directives (the question is part of the last user message the mock reads).
func queryWith(directives string) string {
	return `{"question":"How is churn? [[mock:` + directives + `]]","context":{"churned":12}}`
}

// messagesWith returns a /v1/messages body with mock directives.
func messagesWith(stream bool, maxTokens int, directives string) string {
	return fmt.Sprintf(`{"model":"claude-sonnet-4-5","max_tokens":%d,"stream":%t,"messages":[{"role":"user","content":"tell me [[mock:%s]]"}]}`,
		maxTokens, stream, directives)
}

// outcome is one request as the client saw it.
type outcome struct {
	code int // 0 when err != nil
	hdr  http.Header
	body []byte
	err  error
	dur  time.Duration
}

// send posts a JSON body with client c and reads the whole answer.
func send(ctx context.Context, c *http.Client, url, body string) outcome {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return outcome{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return outcome{err: err, dur: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return outcome{code: resp.StatusCode, hdr: resp.Header, body: b, err: err, dur: time.Since(start)}
}

// newClient is a client with its own connection pool, so one scenario's
// connections never leak into another's. Its idle connections are closed when
// the test ends, before the processes stop, so no gateway waits for them
// while it drains.
func newClient(t *testing.T, timeout time.Duration) *http.Client {
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// tally counts outcomes from many goroutines.
type tally struct {
	mu    sync.Mutex
	codes map[int]int
	errs  []error
	durs  []time.Duration
}

func newTally() *tally { return &tally{codes: map[int]int{}} }

func (t *tally) add(o outcome) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if o.err != nil {
		t.errs = append(t.errs, o.err)
		return
	}
	t.codes[o.code]++
	t.durs = append(t.durs, o.dur)
}

func (t *tally) count(code int) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.codes[code]
}

func (t *tally) total() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.errs)
	for _, c := range t.codes {
		n += c
	}
	return n
}

func (t *tally) fivexx() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for c, k := range t.codes {
		if c >= 500 {
			n += k
		}
	}
	return n
}

func (t *tally) errors() []error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]error(nil), t.errs...)
}

// percentile returns the q-quantile (0..1) of the recorded durations.
func (t *tally) percentile(q float64) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return percentile(t.durs, q)
}

func (t *tally) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var keys []int
	for c := range t.codes {
		keys = append(keys, c)
	}
	sort.Ints(keys)
	var parts []string
	for _, c := range keys {
		parts = append(parts, fmt.Sprintf("%d×%d", t.codes[c], c))
	}
	if len(t.errs) > 0 {
		parts = append(parts, fmt.Sprintf("%d transport errors", len(t.errs)))
	}
	return strings.Join(parts, ", ")
}

func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(q * float64(len(s)-1))
	return s[i]
}

// load keeps workers sending until stop is closed, each pausing gap between
// requests so the total stays bounded (workers × duration / gap).
func load(workers int, gap time.Duration, stop <-chan struct{}, fn func(worker int)) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				fn(w)
				select {
				case <-stop:
					return
				case <-time.After(gap):
				}
			}
		}(w)
	}
	return &wg
}

// readyBody returns the status code and body of GET /ready (0 on a
// connection error).
func readyBody(url string) (int, string) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url + "/ready")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// backendOf returns the "ratelimit" field of /ready ("" when unreachable).
func backendOf(url string) string {
	_, b := readyBody(url)
	var r struct {
		Ratelimit string `json:"ratelimit"`
	}
	_ = json.Unmarshal([]byte(b), &r)
	return r.Ratelimit
}

// mockCalls is how many /v1/messages calls the mock has received.
func mockCalls(t *testing.T, mock *testenv.Proc) int {
	t.Helper()
	st := mock.Stats(t)
	byPath, _ := st["by_path"].(map[string]any)
	n, _ := byPath["/v1/messages"].(float64)
	return int(n)
}

func mockStat(t *testing.T, mock *testenv.Proc, name string) int {
	t.Helper()
	v, _ := mock.Stats(t)[name].(float64)
	return int(v)
}

// writeConfig writes a KEYWARD_CONFIG YAML file for one test.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keyward.yaml")
	require.NoError(t, os.WriteFile(p, []byte(yaml), 0o600))
	return p
}

// sseStream is an open SSE response read event by event.
type sseStream struct {
	resp   *http.Response
	sc     *bufio.Scanner
	cancel context.CancelFunc
	events []string // event names seen, in order
	data   []string // data lines, aligned with events
}

// openStream posts body and returns the open SSE response (status checked by
// the caller).
func openStream(t *testing.T, c *http.Client, url, body string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		cancel()
		require.NoError(t, err)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	s := &sseStream{resp: resp, sc: sc, cancel: cancel}
	t.Cleanup(s.close)
	return s
}

// next reads until the next complete event and returns its name ("" at the
// end of the stream).
func (s *sseStream) next() (string, string) {
	var name, data string
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case strings.HasPrefix(line, "event:"):
			name = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data = strings.TrimSpace(strings.TrimPrefix(line, "data:"))
		case line == "" && (name != "" || data != ""):
			s.events = append(s.events, name)
			s.data = append(s.data, data)
			return name, data
		}
	}
	return "", ""
}

// drain reads the rest of the stream and returns the read error (nil when
// the response ended cleanly, i.e. the chunked body was terminated).
func (s *sseStream) drain() error {
	for {
		name, _ := s.next()
		if name == "" {
			return s.sc.Err()
		}
	}
}

func (s *sseStream) last() (string, string) {
	if len(s.events) == 0 {
		return "", ""
	}
	return s.events[len(s.events)-1], s.data[len(s.data)-1]
}

func (s *sseStream) close() {
	s.cancel()
	s.resp.Body.Close()
}

// delayProxy is a TCP proxy that holds every chunk travelling towards the
// target for a configurable delay: a slow network path to Redis.
type delayProxy struct {
	ln     net.Listener
	target string
	delay  atomic.Int64 // nanoseconds
	mu     sync.Mutex
	conns  []net.Conn
}

func startDelayProxy(t *testing.T, target string) *delayProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &delayProxy{ln: ln, target: target}
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *delayProxy) Addr() string { return p.ln.Addr().String() }

func (p *delayProxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

func (p *delayProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go p.pipe(up, c, true)
		go p.pipe(c, up, false)
	}
}

func (p *delayProxy) pipe(dst, src net.Conn, delayed bool) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if d := time.Duration(p.delay.Load()); delayed && d > 0 {
				time.Sleep(d)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *delayProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// isConnRefused reports a dial that found nothing listening: the request was
// never accepted by any gateway, so a load balancer may send it elsewhere.
func isConnRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}
