// Package testenv starts the real binaries — mock upstream, gateway — on free
// loopback ports for end-to-end and reliability tests. It is the gateway's
// layer over test/stacktest, which the dashboard's tests share.
//
// The mock serves HTTPS with HTTP/2 by default, as api.anthropic.com does,
// with a certificate from a CA made once per test process; StartGateway
// trusts that CA through KEYWARD_UPSTREAM_CA_FILE, so the gateway runs the
// TLS transport production runs. StartMockHTTP keeps a plain-http mock for
// the few tests of that path. Importing testenv also makes the process's
// http.DefaultTransport trust the test CA, so a test can talk to the mock's
// /_mock/ admin API (and to a gateway serving the test certificate) with
// plain http.Get, as a machine with the CA installed would.
package testenv

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/pkg/devtls"
	"github.com/keyward/keyward/services/gateway/test/stacktest"
)

// testCA signs every certificate of this test process.
var testCA *devtls.CA

func init() {
	ca, err := devtls.NewCA()
	if err != nil {
		panic(fmt.Sprintf("testenv: making the test CA: %v", err))
	}
	testCA = ca
	// Replaced before any test runs, so no request races the change.
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		t := dt.Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: RootCAs()}
		http.DefaultTransport = t
	}
}

// RootCAs is the system roots plus the test CA.
func RootCAs() *x509.CertPool {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	pool.AppendCertsFromPEM(testCA.CertPEM())
	return pool
}

// CertFiles are PEM files of a certificate for 127.0.0.1, ::1 and
// localhost signed by the test CA (whose certificate is CA).
type CertFiles struct {
	CA, Cert, Key string
}

var (
	sharedOnce  sync.Once
	sharedFiles CertFiles
	sharedErr   error
)

// TLSFiles returns the test process's shared certificate files.
func TLSFiles(tb testing.TB) CertFiles {
	tb.Helper()
	sharedOnce.Do(func() {
		var dir string
		dir, sharedErr = os.MkdirTemp("", "keyward-tls-")
		if sharedErr == nil {
			var f devtls.Files
			f, sharedErr = testCA.WriteFiles(dir)
			sharedFiles = CertFiles(f)
		}
	})
	if sharedErr != nil {
		tb.Fatalf("writing the test certificate: %v", sharedErr)
	}
	return sharedFiles
}

// IssueCert writes a new certificate and key signed by the test CA (a new
// serial each time) to dir/cert.pem and dir/key.pem, replacing what is
// there: a certificate rotation, as cert-manager renews a Secret.
func IssueCert(tb testing.TB, dir string) CertFiles {
	tb.Helper()
	certPEM, keyPEM, err := testCA.Issue()
	if err != nil {
		tb.Fatalf("issuing a certificate: %v", err)
	}
	f := CertFiles{CA: TLSFiles(tb).CA, Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
	// Key first, then certificate, each by rename, so a reader never sees
	// half a file.
	for _, w := range []struct {
		path string
		data []byte
	}{{f.Key, keyPEM}, {f.Cert, certPEM}} {
		tmp := w.path + ".tmp"
		if err := os.WriteFile(tmp, w.data, 0o600); err != nil {
			tb.Fatalf("writing %s: %v", tmp, err)
		}
		if err := os.Rename(tmp, w.path); err != nil {
			tb.Fatalf("renaming %s: %v", tmp, err)
		}
	}
	return f
}

var (
	buildOnce sync.Once
	bins      map[string]string
	binDir    string
	buildErr  error
)

// Binaries builds the gateway and the mock once per test process (from the
// workspace root) and returns the directory holding them.
func Binaries(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "keyward-bin-")
		if buildErr == nil {
			bins, buildErr = stacktest.BuildBinaries(binDir, stacktest.GatewayPkg, stacktest.MockPkg)
		}
	})
	if buildErr != nil {
		tb.Fatalf("%v", buildErr)
	}
	return binDir
}

func bin(tb testing.TB, pkg string) string {
	tb.Helper()
	Binaries(tb)
	return bins[pkg]
}

// Proc is a running binary.
type Proc struct {
	*stacktest.Process
}

// startRetrying starts a process on fresh ports until it wins its port
// (another process on a shared machine can take a "free" one first).
func startRetrying(tb testing.TB, spec func() stacktest.Spec) *stacktest.Process {
	tb.Helper()
	for attempt := 1; ; attempt++ {
		p, err := stacktest.TryStart(tb, spec())
		if err == nil {
			return p
		}
		if !errors.Is(err, stacktest.ErrPortTaken) || attempt == 4 {
			tb.Fatalf("%v", err)
		}
	}
}

// MockKey is the key the test mock accepts.
// It is not shaped like a real key (sk-ant-…) on purpose: leak tests then
// prove the gateway redacts its configured key, not merely a key pattern.
const MockKey = "mock-server-key-SERVERKEY-0123456789abcdef"

// StartMock starts the mock upstream over HTTPS with HTTP/2 (the test
// certificate), with MockKey and extra env (KEY=VALUE). Its URL is https.
func StartMock(tb testing.TB, env ...string) *Proc {
	tb.Helper()
	f := TLSFiles(tb)
	return startMock(tb, true, append([]string{"MOCKANTHROPIC_TLS_CERT=" + f.Cert, "MOCKANTHROPIC_TLS_KEY=" + f.Key}, env...))
}

// StartMockHTTP starts the mock upstream over plain http (HTTP/1.1), for
// the tests of a cleartext upstream.
func StartMockHTTP(tb testing.TB, env ...string) *Proc {
	tb.Helper()
	return startMock(tb, false, env)
}

func startMock(tb testing.TB, tlsOn bool, env []string) *Proc {
	tb.Helper()
	p := startRetrying(tb, func() stacktest.Spec {
		port := stacktest.FreePort(tb)
		e := envMap(mergeEnv([]string{"MOCKANTHROPIC_ADDR=127.0.0.1:" + strconv.Itoa(port), "MOCKANTHROPIC_API_KEY=" + MockKey}, env))
		return stacktest.Spec{Name: "mockanthropic", Bin: bin(tb, stacktest.MockPkg), Port: port, HealthPath: "/_mock/health", Env: e,
			TLS: tlsOn, RootCAs: RootCAs()}
	})
	return &Proc{p}
}

// Gateway is a running gateway process.
type Gateway struct {
	*Proc
	MetricsURL string
}

// StartGateway starts a gateway against upstream with the given extra env
// ("NAME=VALUE"; "NAME=" removes a default). Defaults: MockKey as
// ANTHROPIC_API_KEY, a generous rate limit, no shutdown delay, and for an
// https upstream the test CA as KEYWARD_UPSTREAM_CA_FILE. With
// KEYWARD_TLS_CERT_FILE (or KEYWARD_METRICS_TLS_CERT_FILE) in env, URL
// (MetricsURL) is https.
func StartGateway(tb testing.TB, upstream string, env ...string) *Gateway {
	tb.Helper()
	var metricsURL string
	p := startRetrying(tb, func() stacktest.Spec {
		port, mport := stacktest.FreePort(tb), stacktest.FreePort(tb)
		merged := envMap(env)
		scheme, mscheme := "http", "http"
		if merged["KEYWARD_TLS_CERT_FILE"] != "" {
			scheme = "https"
		}
		if merged["KEYWARD_METRICS_TLS_CERT_FILE"] != "" {
			mscheme = "https"
		}
		metricsURL = mscheme + "://127.0.0.1:" + strconv.Itoa(mport) + "/metrics"
		base := []string{
			"KEYWARD_ADDR=127.0.0.1:" + strconv.Itoa(port),
			"KEYWARD_METRICS_ADDR=127.0.0.1:" + strconv.Itoa(mport),
			"KEYWARD_UPSTREAM_URL=" + upstream,
			"ANTHROPIC_API_KEY=" + MockKey,
			"KEYWARD_RATE_LIMIT=1000/60s",
			"KEYWARD_SHUTDOWN_DELAY=0s", // tests stop many gateways; readiness tests set their own
			// A race-built gateway on a shared 2-core CI machine can take
			// longer than the production 100 ms for a Redis call; tests of
			// the timeout itself set their own.
			"KEYWARD_REDIS_TIMEOUT=1s",
		}
		if strings.HasPrefix(upstream, "https://") {
			base = append(base, "KEYWARD_UPSTREAM_CA_FILE="+TLSFiles(tb).CA)
		}
		return stacktest.Spec{Name: "gateway", Bin: bin(tb, stacktest.GatewayPkg), Port: port, HealthPath: "/health", Env: envMap(mergeEnv(base, env)),
			TLS: scheme == "https", RootCAs: RootCAs()}
	})
	return &Gateway{Proc: &Proc{p}, MetricsURL: metricsURL}
}

func envMap(kvs []string) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
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
	Proto   string              `json:"proto"` // HTTP/2.0 or HTTP/1.1, as the mock received it
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
	if err := json.Unmarshal(b, &wrapped); err != nil {
		tb.Fatalf("decoding mock requests: %v", err)
	}
	return wrapped.Requests
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

// StartReplicas starts n gateways in front of upstream that share the Redis at
// redisURL, each with the same extra env: the cross-replica setup of the
// budget, limit, cache and ledger tests.
func StartReplicas(tb testing.TB, n int, upstream, redisURL string, env ...string) []*Gateway {
	tb.Helper()
	gws := make([]*Gateway, n)
	for i := range gws {
		gws[i] = StartGateway(tb, upstream, append([]string{"KEYWARD_REDIS_URL=" + redisURL}, env...)...)
	}
	return gws
}
