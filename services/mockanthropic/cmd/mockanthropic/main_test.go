package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr []string
	}{
		{"defaults", nil, nil, config{addr: ":8090", apiKey: "mock-key", shutdownTimeout: 10 * time.Second}, nil},
		{"environment", nil, map[string]string{
			"MOCKANTHROPIC_ADDR": "127.0.0.1:9999", "MOCKANTHROPIC_API_KEY": "k1", "MOCKANTHROPIC_FIRST_BYTE_MS": "25",
			"MOCKANTHROPIC_EVENT_DELAY_MS": "5", "MOCKANTHROPIC_STATUS": "529", "MOCKANTHROPIC_LOG_LEVEL": "warn",
			"MOCKANTHROPIC_SHUTDOWN_TIMEOUT": "3s",
		}, config{addr: "127.0.0.1:9999", apiKey: "k1", firstByteMs: 25, eventDelayMs: 5, status: 529, logLevel: 4, shutdownTimeout: 3 * time.Second}, nil},
		{"flags win over environment", []string{"--addr", ":1", "--api-key", "k2", "--first-byte-ms", "7"},
			map[string]string{"MOCKANTHROPIC_ADDR": ":2", "MOCKANTHROPIC_API_KEY": "k1", "MOCKANTHROPIC_FIRST_BYTE_MS": "25"},
			config{addr: ":1", apiKey: "k2", firstByteMs: 7, shutdownTimeout: 10 * time.Second}, nil},
		{"every problem at once", []string{"extra"}, map[string]string{
			"MOCKANTHROPIC_FIRST_BYTE_MS": "soon", "MOCKANTHROPIC_LOG_LEVEL": "loud", "MOCKANTHROPIC_SHUTDOWN_TIMEOUT": "forever",
		}, config{}, []string{`MOCKANTHROPIC_FIRST_BYTE_MS="soon"`, `log level "loud"`, `shutdown timeout "forever"`, `unexpected arguments`}},
		{"unknown flag", []string{"--nope"}, nil, config{}, []string{"flag provided but not defined"}},
		{"TLS from the environment", nil, map[string]string{"MOCKANTHROPIC_TLS_CERT": "c.pem", "MOCKANTHROPIC_TLS_KEY": "k.pem"},
			config{addr: ":8090", apiKey: "mock-key", shutdownTimeout: 10 * time.Second, tlsCert: "c.pem", tlsKey: "k.pem"}, nil},
		{"TLS generate flag", []string{"--tls-generate", "/some/dir"}, nil,
			config{addr: ":8090", apiKey: "mock-key", shutdownTimeout: 10 * time.Second, tlsGenerate: "/some/dir"}, nil},
		{"a TLS cert needs its key", []string{"--tls-cert", "c.pem"}, nil, config{}, []string{"--tls-cert and --tls-key go together"}},
		{"TLS given and generated", []string{"--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-generate", "d"}, nil, config{}, []string{"not both"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			cfg, err := parseConfig(tt.args, getenv, io.Discard)
			if tt.wantErr != nil {
				for _, w := range tt.wantErr {
					require.ErrorContains(t, err, w)
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, *cfg)
		})
	}
}

func TestRunRejectsBadDefaults(t *testing.T) {
	err := run([]string{"--status", "302"}, func(string) string { return "" }, io.Discard)
	require.ErrorContains(t, err, "status 302")
}

// proc is the built binary, running, with its log lines collected.
type proc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	addr  chan string
	done  chan error
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

func startBinary(t *testing.T, env ...string) (*proc, string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mockanthropic")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))

	p := &proc{addr: make(chan string, 1), done: make(chan error, 1)}
	p.cmd = exec.Command(bin, "--addr", "127.0.0.1:0")
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	stdout, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	p.cmd.Stderr = p.cmd.Stdout
	require.NoError(t, p.cmd.Start())
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.lines = append(p.lines, line)
			p.mu.Unlock()
			var rec struct{ Msg, Addr, Scheme string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				p.addr <- rec.Scheme + "://" + rec.Addr
			}
		}
		p.done <- p.cmd.Wait()
	}()
	select {
	case base := <-p.addr:
		return p, base
	case err := <-p.done:
		t.Fatalf("mockanthropic exited before listening: %v\n%s", err, p.log())
	case <-time.After(20 * time.Second):
		t.Fatalf("mockanthropic did not start\n%s", p.log())
	}
	return nil, ""
}

func post(t *testing.T, url, key, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("x-api-key", key)
	req.Header.Set("anthropic-version", "2023-06-01")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	return resp
}

func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const key = "sk-ant-binary-test-key"
	p, base := startBinary(t, "MOCKANTHROPIC_API_KEY="+key, "MOCKANTHROPIC_FIRST_BYTE_MS=20")

	start := time.Now()
	resp := post(t, base+"/v1/messages", key,
		`{"model":"claude-haiku-4-5","max_tokens":64,"messages":[{"role":"user","content":"ping from the binary test"}]}`)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, string(b))
	require.Contains(t, string(b), "ping from the binary test")
	require.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond, "MOCKANTHROPIC_FIRST_BYTE_MS applies")

	// The container healthcheck subcommand, against the running process.
	bin := p.cmd.Path
	hc := exec.Command(bin, "healthcheck", base+"/_mock/health")
	out, err := hc.CombinedOutput()
	require.NoError(t, err, string(out))
	hc = exec.Command(bin, "healthcheck", base+"/nope")
	out, err = hc.CombinedOutput()
	require.Error(t, err, "a 404 is unhealthy")
	require.Contains(t, string(out), "answered 404")
	hc = exec.Command(bin, "healthcheck")
	hc.Env = []string{"MOCKANTHROPIC_ADDR=" + strings.TrimPrefix(base, "http://")}
	out, err = hc.CombinedOutput()
	require.NoError(t, err, string(out))
	ver, err := exec.Command(bin, "version").Output()
	require.NoError(t, err)
	require.Equal(t, "dev\n", string(ver))

	resp = post(t, base+"/v1/messages", "sk-ant-some-caller-key", `{}`)
	resp.Body.Close()
	require.Equal(t, 401, resp.StatusCode)

	// A stream in progress when SIGTERM arrives is allowed to finish.
	resp = post(t, base+"/v1/messages", key,
		`{"model":"claude-haiku-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"[[mock:event_delay_ms=60]] drain"}]}`)
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	first, err := rd.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "event: message_start\n", first)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	rest, err := io.ReadAll(rd)
	require.NoError(t, err, "the stream completes during the drain")
	require.Contains(t, string(rest), "event: message_stop")

	select {
	case err := <-p.done:
		require.NoError(t, err, "clean exit after SIGTERM\n%s", p.log())
	case <-time.After(10 * time.Second):
		t.Fatalf("no exit after SIGTERM\n%s", p.log())
	}
	logs := p.log()
	require.Contains(t, logs, `"msg":"stopped"`)
	require.Equal(t, 4, strings.Count(logs, `"msg":"request"`), "one line per API request (admin calls are not logged)\n%s", logs)
	require.NotContains(t, logs, key, "the configured key never reaches the log")
	require.NotContains(t, logs, "sk-ant-some-caller-key", "nor does a caller's key")
	require.NotContains(t, logs, "ping from the binary test", "nor the prompt")
}

func TestBinaryDrainDeadline(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	p, base := startBinary(t, "MOCKANTHROPIC_SHUTDOWN_TIMEOUT=200ms")
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/messages", strings.NewReader(
			`{"model":"claude-haiku-4-5","max_tokens":64,"messages":[{"role":"user","content":"[[mock:hang]]"}]}`))
		req.Header.Set("x-api-key", "mock-key")
		req.Header.Set("anthropic-version", "2023-06-01")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/_mock/stats")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st struct {
			InFlight int `json:"in_flight"`
		}
		return json.NewDecoder(resp.Body).Decode(&st) == nil && st.InFlight == 1
	}, 5*time.Second, 10*time.Millisecond)
	sent := time.Now()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("a hanging request kept the process alive\n%s", p.log())
	}
	require.Less(t, time.Since(sent), 5*time.Second)
	require.Error(t, <-errc, "the hanging request was cut off")
	require.Contains(t, p.log(), "drain deadline passed")
}

func TestHealthcheckAddress(t *testing.T) {
	tests := []struct {
		addr    string
		wantErr string
	}{
		{"127.0.0.1:1", "connection refused"},
		{":1", "127.0.0.1:1"},
		{"0.0.0.0:1", "127.0.0.1:1"},
		{"nonsense", `MOCKANTHROPIC_ADDR "nonsense"`},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := healthcheck(nil, func(string) string { return tt.addr })
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
	require.ErrorContains(t, healthcheck([]string{"a", "b"}, os.Getenv), "at most one argument")
}

func TestBinaryTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	p, base := startBinary(t, "MOCKANTHROPIC_TLS_GENERATE="+dir)
	require.True(t, strings.HasPrefix(base, "https://"), base)

	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	require.NoError(t, err, "--tls-generate writes DIR/ca.pem")
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	req, err := http.NewRequest(http.MethodPost, base+"/v1/messages", strings.NewReader(
		`{"model":"claude-haiku-4-5","max_tokens":64,"messages":[{"role":"user","content":"over TLS"}]}`))
	require.NoError(t, err)
	req.Header.Set("x-api-key", "mock-key")
	req.Header.Set("anthropic-version", "2023-06-01")
	resp, err := client.Do(req)
	require.NoError(t, err, "a client trusting ca.pem accepts the generated certificate")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, string(b))
	require.Equal(t, 2, resp.ProtoMajor, "TLS callers negotiate HTTP/2")

	_, err = http.Get(base + "/_mock/health")
	require.Error(t, err, "the system roots do not trust the generated CA")

	// The healthcheck subcommand speaks https when TLS is configured.
	hc := exec.Command(p.cmd.Path, "healthcheck")
	hc.Env = []string{"MOCKANTHROPIC_ADDR=" + strings.TrimPrefix(base, "https://"), "MOCKANTHROPIC_TLS_GENERATE=" + dir}
	out, err := hc.CombinedOutput()
	require.NoError(t, err, string(out))
	out, err = exec.Command(p.cmd.Path, "healthcheck", base+"/_mock/health").CombinedOutput()
	require.NoError(t, err, string(out))

	// Given files serve the same way.
	p2, base2 := startBinary(t, "MOCKANTHROPIC_TLS_CERT="+filepath.Join(dir, "cert.pem"), "MOCKANTHROPIC_TLS_KEY="+filepath.Join(dir, "key.pem"))
	resp, err = client.Get(base2 + "/_mock/health")
	require.NoError(t, err, p2.log())
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, 2, resp.ProtoMajor)
}

func TestRunRejectsUnreadableTLSFiles(t *testing.T) {
	env := map[string]string{"MOCKANTHROPIC_TLS_CERT": "/nonexistent/c.pem", "MOCKANTHROPIC_TLS_KEY": "/nonexistent/k.pem", "MOCKANTHROPIC_ADDR": "127.0.0.1:0"}
	err := run(nil, func(k string) string { return env[k] }, io.Discard)
	require.ErrorContains(t, err, "/nonexistent/c.pem")
}
