// Package testenv starts the real binaries — mock upstream, gateway — on free
// loopback ports for end-to-end and reliability tests.
package testenv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/pkg/redistest"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Binaries builds bin/gateway and bin/mockanthropic once per test process
// (from the workspace root) and returns the directory holding them.
func Binaries(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		root, err := repoRoot()
		if err != nil {
			buildErr = err
			return
		}
		binDir, err = os.MkdirTemp("", "keyward-bin-")
		if err != nil {
			buildErr = err
			return
		}
		for _, b := range []string{"gateway", "mockanthropic"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, b), "./services/"+b+"/cmd/"+b)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("building %s: %v\n%s", b, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		tb.Fatalf("%v", buildErr)
	}
	return binDir
}

func repoRoot() (string, error) {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.work not found above %s", file)
		}
		dir = parent
	}
}

// Proc is a running binary.
type Proc struct {
	Name string
	URL  string // http://127.0.0.1:port of the main listener
	Port int
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
	tb   testing.TB
}

// Logs returns everything the process wrote so far.
func (p *Proc) Logs() string { return p.logs.String() }

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) { _ = p.cmd.Process.Signal(sig) }

// Wait waits for the process to exit (up to d) and reports whether it did.
func (p *Proc) Wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Stop terminates the process (SIGTERM, then SIGKILL after 10 s).
func (p *Proc) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.Signal(syscall.SIGTERM)
	if !p.Wait(10 * time.Second) {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Kill stops the process at once.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// errPortTaken reports that the process lost the race for its port to
// another process on this (shared) machine; the caller retries elsewhere.
var errPortTaken = fmt.Errorf("port taken")

func start(tb testing.TB, name, bin string, env []string, healthURL string, port int) (*Proc, error) {
	tb.Helper()
	p := &Proc{Name: name, logs: &syncBuffer{}, done: make(chan struct{}), tb: tb}
	p.cmd = exec.Command(bin)
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	p.cmd.Dir = tb.TempDir() // no stray .env
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("starting %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			if strings.Contains(p.Logs(), "address already in use") {
				return nil, errPortTaken
			}
			tb.Fatalf("%s exited during start-up:\n%s", name, p.Logs())
		default:
		}
		resp, err := http.Get(healthURL)
		if err == nil {
			resp.Body.Close()
			// The answer must come from our child: it logs the port it bound.
			if resp.StatusCode == http.StatusOK && strings.Contains(p.Logs(), ":"+strconv.Itoa(port)) {
				tb.Cleanup(func() {
					p.Stop()
					if tb.Failed() {
						tb.Logf("--- %s logs ---\n%s", name, tail(p.Logs(), 60))
					}
				})
				return p, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Kill()
	tb.Fatalf("%s did not become healthy at %s:\n%s", name, healthURL, p.Logs())
	return nil, nil
}

// MockKey is the key the test mock accepts.
const MockKey = "sk-ant-test-SERVERKEY-0123456789abcdef"

// StartMock starts the mock upstream with MockKey and extra env (KEY=VALUE).
func StartMock(tb testing.TB, env ...string) *Proc {
	tb.Helper()
	for attempt := 0; ; attempt++ {
		port := redistest.FreePort(tb)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		e := append([]string{"MOCKANTHROPIC_ADDR=" + addr, "MOCKANTHROPIC_API_KEY=" + MockKey}, env...)
		p, err := start(tb, "mockanthropic", filepath.Join(Binaries(tb), "mockanthropic"), e, "http://"+addr+"/_mock/health", port)
		if err != nil {
			if attempt < 3 {
				continue
			}
			tb.Fatalf("mockanthropic: no free port after %d attempts", attempt+1)
		}
		p.URL, p.Port = "http://"+addr, port
		return p
	}
}

// Gateway is a running gateway process.
type Gateway struct {
	*Proc
	MetricsURL string
}

// StartGateway starts a gateway against upstream with the given extra env.
// Defaults: the MockKey as ANTHROPIC_API_KEY, a generous rate limit, debug-free logs.
func StartGateway(tb testing.TB, upstream string, env ...string) *Gateway {
	tb.Helper()
	for attempt := 0; ; attempt++ {
		port, mport := redistest.FreePort(tb), redistest.FreePort(tb)
		base := []string{
			"KEYWARD_ADDR=127.0.0.1:" + strconv.Itoa(port),
			"KEYWARD_METRICS_ADDR=127.0.0.1:" + strconv.Itoa(mport),
			"KEYWARD_UPSTREAM_URL=" + upstream,
			"ANTHROPIC_API_KEY=" + MockKey,
			"KEYWARD_RATE_LIMIT=1000/60s",
			"KEYWARD_SHUTDOWN_DELAY=0s", // tests stop many gateways; readiness tests set their own
		}
		url := "http://127.0.0.1:" + strconv.Itoa(port)
		p, err := start(tb, "gateway", filepath.Join(Binaries(tb), "gateway"), mergeEnv(base, env), url+"/health", port)
		if err != nil {
			if attempt < 3 {
				continue
			}
			tb.Fatalf("gateway: no free port after %d attempts", attempt+1)
		}
		p.URL, p.Port = url, port
		return &Gateway{Proc: p, MetricsURL: "http://127.0.0.1:" + strconv.Itoa(mport) + "/metrics"}
	}
}

// mergeEnv overrides base entries with same-named extra entries; an entry
// "NAME=" with an empty value removes NAME.
func mergeEnv(base, extra []string) []string {
	idx := map[string]int{}
	out := append([]string(nil), base...)
	for i, kv := range out {
		idx[strings.SplitN(kv, "=", 2)[0]] = i
	}
	for _, kv := range extra {
		k := strings.SplitN(kv, "=", 2)[0]
		if i, ok := idx[k]; ok {
			out[i] = kv
		} else {
			idx[k] = len(out)
			out = append(out, kv)
		}
	}
	kept := out[:0]
	for _, kv := range out {
		if !strings.HasSuffix(kv, "=") {
			kept = append(kept, kv)
		}
	}
	return kept
}

// Metric returns the sum of all samples of a metric family whose labels
// contain every given label pair (e.g. `code="200"`).
func (g *Gateway) Metric(tb testing.TB, name string, labels ...string) float64 {
	tb.Helper()
	resp, err := http.Get(g.MetricsURL)
	if err != nil {
		tb.Fatalf("scraping metrics: %v", err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || len(line) <= len(name) || (line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(line, l) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum += f
		}
	}
	return sum
}

// MetricsText returns the raw /metrics exposition.
func (g *Gateway) MetricsText(tb testing.TB) string {
	tb.Helper()
	resp, err := http.Get(g.MetricsURL)
	if err != nil {
		tb.Fatalf("scraping metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// MockRequest is one upstream call recorded by the mock.
type MockRequest struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Headers map[string][]string `json:"headers"`
	Body    string              `json:"body"`
}

// Requests returns the upstream calls the mock recorded.
func (p *Proc) Requests(tb testing.TB) []MockRequest {
	tb.Helper()
	resp, err := http.Get(p.URL + "/_mock/requests")
	if err != nil {
		tb.Fatalf("reading mock requests: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var wrapped struct {
		Requests []MockRequest `json:"requests"`
	}
	if err := json.Unmarshal(b, &wrapped); err == nil && wrapped.Requests != nil {
		return wrapped.Requests
	}
	var list []MockRequest
	if err := json.Unmarshal(b, &list); err != nil {
		tb.Fatalf("decoding mock requests %q: %v", tail(string(b), 5), err)
	}
	return list
}

// MockPost posts JSON to a mock admin endpoint (/_mock/faults, /_mock/reset, …).
func (p *Proc) MockPost(tb testing.TB, path, body string) {
	tb.Helper()
	resp, err := http.Post(p.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		tb.Fatalf("mock %s: %v", path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		tb.Fatalf("mock %s: %d %s", path, resp.StatusCode, b)
	}
}

// Stats returns the mock's /_mock/stats as a generic map.
func (p *Proc) Stats(tb testing.TB) map[string]any {
	tb.Helper()
	resp, err := http.Get(p.URL + "/_mock/stats")
	if err != nil {
		tb.Fatalf("reading mock stats: %v", err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		tb.Fatalf("decoding mock stats: %v", err)
	}
	return m
}

// Do sends a request with a timeout and returns status, headers and body.
func Do(tb testing.TB, method, url string, hdr map[string]string, body string) (int, http.Header, []byte) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		tb.Fatalf("building request: %v", err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
