// Package stacktest builds and starts the real keyward binaries (the mock
// Anthropic upstream, the gateway, the dashboard) on free loopback ports for
// end-to-end tests, the way redistest starts a real redis-server. Processes
// stop when the test ends; their logs are kept and shown when it fails.
//
// It lives with the services, not in pkg, because it builds them: the
// libraries in pkg test on their own (cd pkg && GOWORK=off go test ./...).
// The gateway's tests use it through internal/testenv; the dashboard's
// end-to-end tests use it directly.
package stacktest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/pkg/devtls"
	"github.com/keyward/keyward/pkg/redistest"
)

// Main packages, relative to the repository root (DESIGN.md's layout).
const (
	GatewayPkg   = "./services/gateway/cmd/gateway"
	MockPkg      = "./services/mockanthropic/cmd/mockanthropic"
	DashboardPkg = "./services/dashboard/cmd/dashboard"
)

// RepoRoot finds the repository root (the directory holding go.work)
// above the working directory, failing the test when there is none.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	root, err := FindRepoRoot()
	if err != nil {
		tb.Fatalf("%v", err)
	}
	return root
}

// FindRepoRoot is RepoRoot for callers without a testing.TB (TestMain).
func FindRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("getting working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the working directory: run the tests inside the keyward repository")
		}
		dir = parent
	}
}

// Build compiles the given main packages (GatewayPkg, …) from the
// repository root into dir and returns the binaries' paths, keyed by
// package. One `go build` builds them all, so the work is shared.
func Build(tb testing.TB, dir string, pkgs ...string) map[string]string {
	tb.Helper()
	bins, err := BuildBinaries(dir, pkgs...)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	return bins
}

// BuildBinaries is Build for callers without a testing.TB, such as a
// TestMain that builds once for a whole package.
func BuildBinaries(dir string, pkgs ...string) (map[string]string, error) {
	root, err := FindRepoRoot()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	args := append([]string{"build", "-o", dir + string(os.PathSeparator)}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", strings.Join(pkgs, " "), err, out)
	}
	bins := make(map[string]string, len(pkgs))
	for _, p := range pkgs {
		bins[p] = filepath.Join(dir, filepath.Base(p))
	}
	return bins, nil
}

// Spec describes a process to start.
type Spec struct {
	Name string // for logs: "gateway", "mock", …
	Bin  string
	Args []string
	// Env is the whole environment beyond PATH, HOME and TMPDIR: the
	// test's own environment is not inherited, so a developer's
	// ANTHROPIC_API_KEY can never leak into a test process.
	Env map[string]string
	// Port is the port the process will listen on (see FreePort); it is
	// only used to build URL.
	Port int
	// HealthPath is polled until it answers 200 (e.g. "/health").
	HealthPath string
	// TLS: the process serves HTTPS with a certificate RootCAs verifies
	// (URL is then https://…).
	TLS     bool
	RootCAs *x509.CertPool
}

// Process is a running binary.
type Process struct {
	Name string
	Port int
	URL  string // http://127.0.0.1:port, or https:// with Spec.TLS
	// CAFile is the PEM CA a Mock's certificate chains to, for
	// KEYWARD_UPSTREAM_CA_FILE.
	CAFile string

	client *http.Client

	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
	once sync.Once
}

// FreePort returns a free loopback TCP port (never 6379).
func FreePort(tb testing.TB) int { return redistest.FreePort(tb) }

// ErrPortTaken reports that a process lost the race for its port to
// another process on this (shared) machine; pick another port and retry.
var ErrPortTaken = errors.New("port already in use")

// Start runs spec, waits until its health path answers 200 and stops the
// process when the test ends. It fails the test, with the process's log,
// when the process exits or is not healthy within 30 s.
func Start(tb testing.TB, spec Spec) *Process {
	tb.Helper()
	p, err := TryStart(tb, spec)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	return p
}

// TryStart is Start that returns ErrPortTaken (instead of failing the test)
// when the process could not bind its port, so the caller can retry.
func TryStart(tb testing.TB, spec Spec) (*Process, error) {
	tb.Helper()
	p := &Process{
		Name:   spec.Name,
		Port:   spec.Port,
		URL:    "http://127.0.0.1:" + strconv.Itoa(spec.Port),
		client: &http.Client{Timeout: time.Second},
		logs:   &syncBuffer{},
		done:   make(chan struct{}),
	}
	if spec.TLS {
		p.URL = "https://127.0.0.1:" + strconv.Itoa(spec.Port)
		p.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: spec.RootCAs}, ForceAttemptHTTP2: true}
	}
	cmd := exec.Command(spec.Bin, spec.Args...)
	// A private working directory: the gateway reads a .env from its
	// working directory in development, and a stray one must not apply.
	cmd.Dir = tb.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + cmd.Dir, "TMPDIR=" + os.TempDir()}
	for k, v := range spec.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", spec.Name, err)
	}
	p.cmd = cmd
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	if spec.HealthPath != "" {
		if err := p.waitHealthy(spec.HealthPath, 30*time.Second); err != nil {
			p.Kill()
			if strings.Contains(p.Logs(), "address already in use") {
				return nil, fmt.Errorf("%s: %w", spec.Name, ErrPortTaken)
			}
			return nil, fmt.Errorf("%s did not become healthy: %w\n--- %s log ---\n%s", spec.Name, err, spec.Name, tail(p.Logs(), 8000))
		}
	}
	tb.Cleanup(func() {
		p.Stop()
		if tb.Failed() {
			tb.Logf("--- %s log ---\n%s", p.Name, tail(p.Logs(), 8000))
		}
	})
	return p, nil
}

func (p *Process) waitHealthy(path string, timeout time.Duration) error {
	client := p.client
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("process exited: %s", p.cmd.ProcessState)
		default:
		}
		resp, err := client.Get(p.URL + path)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			// On a shared machine another process can grab a "free" port; the
			// answer only counts when our child logged that port.
			if resp.StatusCode == http.StatusOK && strings.Contains(p.Logs(), ":"+strconv.Itoa(p.Port)) {
				return nil
			}
			err = fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
		}
		last = err
		select {
		case <-p.done:
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("after %v: %w", timeout, last)
}

// Stop sends SIGTERM and, if the process has not exited within 10 s, kills
// it. Safe to call more than once.
func (p *Process) Stop() {
	p.once.Do(func() {
		p.client.CloseIdleConnections()
		if p.cmd == nil || p.cmd.Process == nil {
			return
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// Signal sends sig to the process (SIGTERM to test a drain, say).
func (p *Process) Signal(sig os.Signal) { _ = p.cmd.Process.Signal(sig) }

// Kill stops the process at once and waits for it.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Wait waits up to d for the process to exit and reports whether it did.
func (p *Process) Wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Logs returns everything the process wrote to stdout and stderr so far.
func (p *Process) Logs() string { return p.logs.String() }

// Client is an HTTP client for p: it trusts p's certificate when p serves
// TLS.
func (p *Process) Client() *http.Client { return p.client }

// Mock starts mockanthropic accepting apiKey.
func Mock(tb testing.TB, bin, apiKey string) *Process {
	tb.Helper()
	port := FreePort(tb)
	ca, err := devtls.NewCA()
	if err != nil {
		tb.Fatalf("making the mock's CA: %v", err)
	}
	files, err := ca.WriteFiles(tb.TempDir())
	if err != nil {
		tb.Fatalf("writing the mock's certificate: %v", err)
	}
	p := Start(tb, Spec{
		Name: "mockanthropic", Bin: bin, Port: port, HealthPath: "/_mock/health",
		Env: map[string]string{
			"MOCKANTHROPIC_ADDR":     "127.0.0.1:" + strconv.Itoa(port),
			"MOCKANTHROPIC_API_KEY":  apiKey,
			"MOCKANTHROPIC_TLS_CERT": files.Cert,
			"MOCKANTHROPIC_TLS_KEY":  files.Key,
		},
		TLS: true, RootCAs: ca.Pool(),
	})
	p.CAFile = files.CA
	return p
}

// Gateway starts the gateway with env (KEYWARD_UPSTREAM_URL,
// ANTHROPIC_API_KEY, …) on free public and metrics ports. MetricsURL is
// returned for scraping /metrics.
func Gateway(tb testing.TB, bin string, env map[string]string) (gw *Process, metricsURL string) {
	tb.Helper()
	port, mport := FreePort(tb), FreePort(tb)
	full := map[string]string{
		"KEYWARD_ADDR":         "127.0.0.1:" + strconv.Itoa(port),
		"KEYWARD_METRICS_ADDR": "127.0.0.1:" + strconv.Itoa(mport),
	}
	for k, v := range env {
		full[k] = v
	}
	gw = Start(tb, Spec{Name: "gateway", Bin: bin, Port: port, HealthPath: "/health", Env: full})
	return gw, "http://127.0.0.1:" + strconv.Itoa(mport)
}

// Dashboard starts the dashboard on port (0: a free one) with env
// (DASHBOARD_GATEWAY_URL, …). Choosing the port lets a test allow the
// dashboard's origin in the gateway's CORS list before starting it.
func Dashboard(tb testing.TB, bin string, port int, env map[string]string) *Process {
	tb.Helper()
	if port == 0 {
		port = FreePort(tb)
	}
	full := map[string]string{"DASHBOARD_ADDR": "127.0.0.1:" + strconv.Itoa(port)}
	for k, v := range env {
		full[k] = v
	}
	return Start(tb, Spec{Name: "dashboard", Bin: bin, Port: port, HealthPath: "/health", Env: full})
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Bound memory: a chatty process in a long test keeps its last 4 MB.
	if b.buf.Len() > 4<<20 {
		rest := b.buf.Bytes()[b.buf.Len()-2<<20:]
		b.buf = *bytes.NewBuffer(append([]byte(nil), rest...))
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
