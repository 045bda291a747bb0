//go:build reliability

package reliability

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/redistest"
	"github.com/keyward/keyward/services/gateway/internal/testenv"
)

// This file is the hostile-client and hostile-upstream half of the suite:
// callers that trickle bodies or never read, upstreams that send endless
// lines or echo the server key everywhere, unsafe settings, and a Redis that
// refuses the gateway. Every client is on loopback; several source
// addresses of 127.0.0.0/8 stand for different callers.

const jwtSecret = "hostile-suite-jwt-secret-0123456789abcdef"

// hs256 mints a JWT for sub (what an identity provider would hand a caller).
func hs256(sub string) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims := enc.EncodeToString([]byte(fmt.Sprintf(`{"sub":%q,"exp":%d}`, sub, time.Now().Add(time.Hour).Unix())))
	mac := hmac.New(sha256.New, []byte(jwtSecret))
	mac.Write([]byte(head + "." + claims))
	return head + "." + claims + "." + enc.EncodeToString(mac.Sum(nil))
}

// dialFrom dials addr from the given local loopback address.
func dialFrom(local, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return d.Dial("tcp", addr)
}

// clientFrom is an HTTP client whose connections leave from local.
func clientFrom(local string, timeout time.Duration) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: d.DialContext}}
}

func hostPort(url string) string { return strings.TrimPrefix(url, "http://") }

// waitFor polls cond every 50 ms until it holds or d passes; it returns how
// long it took.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

func TestReliabilityHostileSlowBodiesDoNotStarveOthers(t *testing.T) {
	mock := testenv.StartMock(t)
	// 400 global slots: without the per-address cap, 500 slow bodies from
	// one address would take all of them.
	cfg := writeConfig(t, "limits:\n  max_inflight: 400\n")
	g := testenv.StartGateway(t, mock.URL, "KEYWARD_CONFIG="+cfg, "KEYWARD_AUTH_REQUIRED=true", "KEYWARD_JWT_SECRET="+jwtSecret)
	addr := hostPort(g.URL)

	const slow = 500
	type held struct {
		status string
		at     time.Duration
	}
	results := make(chan held, slow)
	start := time.Now()
	var conns []net.Conn
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < slow; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialFrom("127.0.0.2", addr)
			if err != nil {
				results <- held{status: "dial: " + err.Error()}
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			// Headers, then one byte of a 1000-byte body, then nothing.
			fmt.Fprintf(c, "POST /api/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				results <- held{status: "read: " + err.Error(), at: time.Since(start)}
				return
			}
			resp.Body.Close()
			results <- held{status: resp.Status, at: time.Since(start)}
		}()
	}
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()

	// Wait until the slow address holds its slots.
	waitFor(t, 10*time.Second, "slow bodies in flight", func() bool { return g.Metric(t, "keyward_inflight_requests") >= 32 })
	inflight := g.Metric(t, "keyward_inflight_requests")

	// An authenticated caller from another address is served meanwhile.
	good := clientFrom("127.0.0.1", 10*time.Second)
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/api/query", strings.NewReader(queryBody))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+hs256("alice"))
	t0 := time.Now()
	resp, err := good.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	served := time.Since(t0)
	require.Equal(t, http.StatusOK, resp.StatusCode, "the authenticated caller from 127.0.0.1 is served: %s", body)
	stillHeld := g.Metric(t, "keyward_inflight_requests")

	wg.Wait()
	close(results)
	counts := map[string]int{}
	var first408, last408 time.Duration
	for r := range results {
		counts[r.status]++
		if r.status == "408 Request Timeout" {
			if first408 == 0 || r.at < first408 {
				first408 = r.at
			}
			last408 = max(last408, r.at)
		}
	}
	t.Logf("figure: 500 slow bodies from 127.0.0.2: %v; authenticated caller from 127.0.0.1 served in %s while %v requests were in flight (peak seen %v)",
		counts, served.Round(time.Millisecond), stillHeld, inflight)
	t.Logf("figure: slow bodies got 408 between %s and %s after they started", first408.Round(time.Millisecond), last408.Round(time.Millisecond))
	require.Equal(t, 64, counts["408 Request Timeout"], "the address's 64 pre-auth slots, each released by a 408")
	require.Equal(t, slow-64, counts["503 Service Unavailable"], "the rest refused at once")
	require.Less(t, last408, 10*time.Second, "slow bodies are cut at the body deadline (5 s), not the 30 s read timeout")
	waitFor(t, 5*time.Second, "slots released", func() bool { return g.Metric(t, "keyward_inflight_requests") == 0 })
}

// hostileUpstream is an upstream that misbehaves on purpose, steered by the
// mode the test sets.
type hostileUpstream struct {
	*httptest.Server
	mode     atomic.Value // string
	sent     atomic.Int64 // bytes of the current long line or flood written
	finished chan time.Duration
}

func startHostile(t *testing.T) *hostileUpstream {
	t.Helper()
	h := &hostileUpstream{finished: make(chan time.Duration, 16)}
	h.mode.Store("")
	h.Server = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.Close)
	return h
}

const sseStart = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n" +
	"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"

func (h *hostileUpstream) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	key := r.Header.Get("X-Api-Key")
	flush := func() { w.(http.Flusher).Flush() }
	start := time.Now()
	switch mode := h.mode.Load().(string); mode {
	case "long_line":
		// One SSE line of 300 MiB without a newline, in 64 KiB chunks.
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, sseStart+"event: content_block_delta\ndata: ")
		chunk := bytes.Repeat([]byte("p"), 64<<10)
		h.sent.Store(0)
		for n := 0; n < 300<<20; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				break
			}
			h.sent.Add(int64(len(chunk)))
		}
		flush()
	case "flood":
		// Valid text deltas as fast as the gateway takes them.
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, sseStart)
		ev := []byte("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"" + strings.Repeat("flood ", 160) + "\"}}\n\n")
		for time.Since(start) < 2*time.Minute {
			if _, err := w.Write(ev); err != nil {
				break
			}
			flush()
		}
		h.finished <- time.Since(start)
	case "echo":
		h.echo(w, string(body), key)
	default:
		http.Error(w, "no mode", http.StatusInternalServerError)
	}
}

// echo answers with the received key in every header and error field; the
// status comes from "echo_status=N" in the request body.
func (h *hostileUpstream) echo(w http.ResponseWriter, body, key string) {
	status := 400
	if i := strings.Index(body, "echo_status="); i >= 0 {
		status, _ = strconv.Atoi(body[i+len("echo_status=") : i+len("echo_status=")+3])
	}
	hd := w.Header()
	for _, name := range []string{"Request-Id", "X-Request-Id", "Anthropic-Organization-Id", "X-Echo", "Www-Authenticate", "Set-Cookie", "Retry-After-Ms"} {
		hd.Set(name, "req_"+key)
	}
	hd.Set("X-"+key, "1")
	hd.Set("Retry-After", "1")
	hd.Set("X-Should-Retry", "false")
	fields := fmt.Sprintf(`"type":%q,"message":"key %s rejected","param":%q,"details":{"error_code":%q,"key":%q}`, key, key, key, key, key)
	if status == 200 && !strings.Contains(body, `"stream":true`) {
		hd.Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q,"type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"the key is %s"}],"stop_reason":"end_turn","usage":{"input_tokens":5,"output_tokens":3}}`, key, key)
		return
	}
	if status == 200 {
		// A stream that fails mid-way with the key in its error event.
		hd.Set("Content-Type", "text/event-stream")
		io.WriteString(w, sseStart)
		fmt.Fprintf(w, "event: error\ndata: {\"type\":\"error\",\"error\":{%s},\"request_id\":%q}\n\n", fields, key)
		return
	}
	hd.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"type":"error","error":{%s},"request_id":%q}`, fields, key)
}

// gatewayPID finds the gateway process listening on port, by its
// environment (the test harness does not expose the PID).
func gatewayPID(t *testing.T, port int) int {
	t.Helper()
	want := []byte("KEYWARD_ADDR=127.0.0.1:" + strconv.Itoa(port) + "\x00")
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		env, err := os.ReadFile(d + "/environ")
		if err == nil && bytes.Contains(env, want) {
			pid, _ := strconv.Atoi(filepath.Base(d))
			return pid
		}
	}
	t.Fatalf("no process with KEYWARD_ADDR on port %d", port)
	return 0
}

// procStatusKB reads a kB field (VmRSS, VmHWM) of /proc/PID/status.
func procStatusKB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			n, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

func TestReliabilityHostileUpstreamLongLineOnEverySSEPath(t *testing.T) {
	up := startHostile(t)
	up.mode.Store("long_line")
	g := testenv.StartGateway(t, up.URL)
	pid := gatewayPID(t, g.Port)
	before := procStatusKB(t, pid, "VmRSS")

	for _, path := range []struct{ name, url, body string }{
		{"/v1/messages stream", g.URL + "/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`},
		{"/api/query stream", g.URL + "/api/query", `{"question":"How is churn?","context":{"churned":12},"stream":true}`},
	} {
		s := openStream(t, newClient(t, time.Minute), path.url, path.body)
		require.Equal(t, http.StatusOK, s.resp.StatusCode, path.name)
		require.NoError(t, s.drain(), "%s: the stream ends cleanly", path.name)
		name, data := s.last()
		require.Equal(t, "error", name, "%s: ends with an error event", path.name)
		require.Contains(t, data, "longer than 1 MiB")
		for _, d := range s.data {
			require.NotContains(t, d, "pppppppp", "%s: no part of the long line reaches the caller", path.name)
		}
		t.Logf("figure: %s: the upstream offered a 300 MiB line and got %d MiB out (socket buffers included) before the gateway ended the stream with an error event",
			path.name, up.sent.Load()>>20)
	}
	peak := procStatusKB(t, pid, "VmHWM")
	t.Logf("figure: gateway RSS %d MB before, peak (VmHWM) %d MB across both 300 MiB lines", before>>10, peak>>10)
	require.Less(t, peak, int64(100<<10), "gateway peak RSS stays under 100 MB")
}

func TestReliabilityHostileNonReadingClientIsReleased(t *testing.T) {
	up := startHostile(t)
	up.mode.Store("flood")
	const streamCap = 5 * time.Second
	g := testenv.StartGateway(t, up.URL, "KEYWARD_MAX_STREAM_DURATION="+streamCap.String())

	for _, path := range []struct{ name, path, body string }{
		{"/v1/messages", "/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`},
		{"/api/query", "/api/query", `{"question":"How is churn?","context":{"churned":12},"stream":true}`},
	} {
		c, err := dialFrom("127.0.0.3", hostPort(g.URL))
		require.NoError(t, err)
		// A small receive window, and the answer is never read.
		require.NoError(t, c.(*net.TCPConn).SetReadBuffer(4096))
		start := time.Now()
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path.path, len(path.body), path.body)
		waitFor(t, 5*time.Second, "stream open", func() bool { return g.Metric(t, "keyward_streams_active") == 1 })
		waitFor(t, streamCap+10*time.Second, "slots released", func() bool {
			return g.Metric(t, "keyward_streams_active") == 0 && g.Metric(t, "keyward_inflight_requests") == 0
		})
		total := time.Since(start)
		upstreamHeld := <-up.finished
		c.Close()
		t.Logf("figure: %s: a client that never reads held its stream and in-flight slots %s (stream cap %s); upstream call ended after %s",
			path.name, total.Round(100*time.Millisecond), streamCap, upstreamHeld.Round(100*time.Millisecond))
		require.Less(t, total, streamCap+5*time.Second, "released within the stream cap plus 5 s")
	}
}

func TestReliabilityHostileUpstreamEchoingTheKeyNeverLeaks(t *testing.T) {
	up := startHostile(t)
	up.mode.Store("echo")
	g := testenv.StartGateway(t, up.URL, "KEYWARD_UPSTREAM_MAX_RETRIES=0", "KEYWARD_UPSTREAM_BREAKER_THRESHOLD=0")
	c := newClient(t, 30*time.Second)
	var seen strings.Builder
	calls, lastID := 0, ""
	for _, status := range []int{400, 401, 403, 404, 413, 429, 500, 529, 200} {
		for _, p := range []struct{ path, body string }{
			{"/v1/messages", fmt.Sprintf(`{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"echo_status=%d"}]}`, status)},
			{"/v1/messages", fmt.Sprintf(`{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"echo_status=%d"}]}`, status)},
			{"/v1/messages/count_tokens", fmt.Sprintf(`{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"echo_status=%d"}]}`, status)},
			{"/api/query", fmt.Sprintf(`{"question":"echo_status=%d","context":{}}`, status)},
			{"/api/query", fmt.Sprintf(`{"question":"echo_status=%d","context":{},"stream":true}`, status)},
		} {
			o := send(context.Background(), c, g.URL+p.path, p.body)
			require.NoError(t, o.err)
			require.Less(t, o.code, 600)
			calls++
			lastID = o.hdr.Get("X-Request-Id")
			if o.dur > time.Second {
				t.Logf("slow: %s %s %d %s", p.path, p.body, o.code, o.dur)
			}
			fmt.Fprintf(&seen, "%s %d %v\n%s\n", p.path, o.code, o.hdr, o.body)
		}
	}
	all := seen.String()
	waitFor(t, 5*time.Second, "every request logged", func() bool { return strings.Contains(g.Logs(), lastID) })
	require.NotContains(t, all, testenv.MockKey, "the key never reaches a caller (headers or body)")
	require.NotContains(t, g.Logs(), testenv.MockKey, "nor a log line")
	require.Contains(t, all, "[redacted]", "the echoed fields were there, redacted")
	t.Logf("figure: %d calls against an upstream echoing the key in %d headers and every error field: 0 occurrences in responses or %d log bytes",
		calls, 8, len(g.Logs()))
}

func TestReliabilityHostileRetryAfterIsCapped(t *testing.T) {
	mock := testenv.StartMock(t)
	g := testenv.StartGateway(t, mock.URL, "KEYWARD_MAX_RETRY_AFTER=60s")
	o := send(context.Background(), newClient(t, 30*time.Second), g.URL+"/v1/messages", messagesWith(false, 64, "status=429 retry_after=86400"))
	require.NoError(t, o.err)
	require.Equal(t, "60", o.hdr.Get("Retry-After"), "a day is passed on as the cap")
	waitFor(t, 5*time.Second, "the real value logged", func() bool { return strings.Contains(g.Logs(), `"upstream_retry_after_s":86400`) })
	t.Logf("figure: upstream Retry-After 86400 s became %s s for the caller", o.hdr.Get("Retry-After"))
}

func TestReliabilityHostileUnsafeSettingsFailCheckConfig(t *testing.T) {
	gw := filepath.Join(testenv.Binaries(t), "gateway")
	dir := t.TempDir()
	loose := filepath.Join(dir, "api-key")
	require.NoError(t, os.WriteFile(loose, []byte(testenv.MockKey), 0o644))
	run := func(env ...string) (int, string) {
		cmd := exec.Command(gw, "--check-config")
		cmd.Dir = dir
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, env...)
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	key := "ANTHROPIC_API_KEY=" + testenv.MockKey
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"cleartext non-loopback upstream", []string{key, "KEYWARD_UPSTREAM_URL=http://api.anthropic.example"}, "is cleartext http to a non-loopback host"},
		{"catch-all trusted proxies", []string{key, "KEYWARD_TRUSTED_PROXIES=0.0.0.0/0"}, "0.0.0.0/0 is a catch-all"},
		{"catch-all IPv6 trusted proxies", []string{key, "KEYWARD_TRUSTED_PROXIES=::/0"}, "::/0 is a catch-all"},
		{"world-readable key file, strict", []string{"ANTHROPIC_API_KEY_FILE=" + loose, "KEYWARD_STRICT_FILE_PERMISSIONS=true"}, "has mode 0644"},
	} {
		code, out := run(tc.env...)
		require.Equal(t, 1, code, "%s: --check-config fails: %s", tc.name, out)
		require.Contains(t, out, tc.want, tc.name)
		t.Logf("figure: %s: exit %d: %s", tc.name, code, strings.TrimSpace(out[strings.LastIndex(out, "- ")+2:]))
	}
	// Allowed, but not silently.
	code, out := run("ANTHROPIC_API_KEY_FILE="+loose, "KEYWARD_UPSTREAM_URL=http://egress.internal:8080", "KEYWARD_ALLOW_INSECURE_UPSTREAM=true")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "warning: KEYWARD_UPSTREAM_URL http://egress.internal:8080 is cleartext")
	require.Contains(t, out, "warning: ANTHROPIC_API_KEY_FILE")
	require.NotContains(t, out, testenv.MockKey)
}

// relayFrom forwards connections to target, dialling it from local: to
// Redis, the gateway then is a client from that address.
func relayFrom(t *testing.T, local, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := dialFrom(local, target)
			if err != nil {
				in.Close()
				continue
			}
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
	return ln.Addr().String()
}

func TestReliabilityHostileRedisInProtectedModeIsReported(t *testing.T) {
	// redis-server 7 in protected mode with no password accepts only
	// 127.0.0.1 and ::1 as local clients; reached from 127.0.0.2 (through a
	// relay, since the kernel picks 127.0.0.1 as the source for any
	// loopback destination) it answers every connection with its real
	// "-DENIED Redis is running in protected mode …" and closes it.
	rs := redistest.Start(t) // --protected-mode yes, no password
	relay := relayFrom(t, "127.0.0.2", rs.Addr)
	mock := testenv.StartMock(t)
	start := time.Now()
	g := testenv.StartGateway(t, mock.URL, "KEYWARD_REDIS_URL=redis://"+relay+"/0")

	var body string
	defer func() {
		if t.Failed() {
			t.Logf("last /ready: %s", body)
		}
	}()
	took := waitFor(t, 10*time.Second, "protected mode on /ready", func() bool {
		_, body = readyBody(g.URL)
		return strings.Contains(body, `"ratelimit_problem":"protected_mode"`)
	})
	require.Contains(t, body, `"ratelimit":"degraded"`)
	require.Contains(t, body, `"ratelimit_fallback":"local"`, "says the limits are per replica now")
	require.Equal(t, 1.0, g.Metric(t, "keyward_redis_problem", `problem="protected_mode"`))
	require.Equal(t, 0.0, g.Metric(t, "keyward_ratelimit_backend_up"))
	waitFor(t, 5*time.Second, "the per-replica warning logged", func() bool { return strings.Contains(g.Logs(), "rate limits are not shared") })
	t.Logf("figure: Redis in protected mode reported on /ready and in keyward_redis_problem %s after the gateway was healthy (%s after start)",
		took.Round(10*time.Millisecond), time.Since(start).Round(10*time.Millisecond))

	// The same Redis reached from 127.0.0.1 is fine, and reports memory.
	g2 := testenv.StartGateway(t, mock.URL, "KEYWARD_REDIS_URL="+rs.URL())
	waitFor(t, 10*time.Second, "memory gauge", func() bool { return g2.Metric(t, "keyward_redis_memory_used_bytes") > 0 })
	_, body = readyBody(g2.URL)
	require.Contains(t, body, `"ratelimit":"redis"`)
	require.NotContains(t, body, "ratelimit_problem")
}

// The same two hostile upstreams, as the mock plays them (its long_line,
// echo_key_headers and echo_key_fields directives).

func TestReliabilityHostileMockLongLineOnEverySSEPath(t *testing.T) {
	mock := testenv.StartMock(t)
	g := testenv.StartGateway(t, mock.URL)
	pid := gatewayPID(t, g.Port)
	const line = 300 << 20
	for _, path := range []struct{ name, url, body string }{
		{"/v1/messages stream", g.URL + "/v1/messages", messagesWith(true, 64, fmt.Sprintf("long_line=%d", line))},
		{"/api/query stream", g.URL + "/api/query", `{"question":"How is churn? [[mock:long_line=` + strconv.Itoa(line) + `]]","context":{"churned":12},"stream":true}`},
	} {
		s := openStream(t, newClient(t, time.Minute), path.url, path.body)
		require.Equal(t, http.StatusOK, s.resp.StatusCode, path.name)
		require.NoError(t, s.drain(), "%s: the stream ends cleanly", path.name)
		name, data := s.last()
		require.Equal(t, "error", name, "%s: ends with an error event", path.name)
		require.Contains(t, data, "longer than 1 MiB")
	}
	peak := procStatusKB(t, pid, "VmHWM")
	t.Logf("figure: mock long_line=300 MiB on both SSE paths: gateway peak RSS (VmHWM) %d MB; both streams ended with an error event", peak>>10)
	require.Less(t, peak, int64(100<<10), "gateway peak RSS stays under 100 MB")
}

func TestReliabilityHostileMockEchoingTheKeyNeverLeaks(t *testing.T) {
	mock := testenv.StartMock(t)
	g := testenv.StartGateway(t, mock.URL, "KEYWARD_UPSTREAM_MAX_RETRIES=0", "KEYWARD_UPSTREAM_BREAKER_THRESHOLD=0")
	c := newClient(t, 30*time.Second)
	var seen strings.Builder
	calls, lastID, codes := 0, "", map[string]int{}
	directives := []string{"echo_key_headers", "echo_key_headers error_after=2 echo_key_fields status=200"}
	for _, st := range []int{400, 401, 403, 404, 413, 429, 500, 529} {
		directives = append(directives, fmt.Sprintf("echo_key_headers echo_key_fields status=%d", st))
	}
	for _, d := range directives {
		for _, p := range []struct{ path, body string }{
			{"/v1/messages", messagesWith(false, 64, d)},
			{"/v1/messages", messagesWith(true, 64, d)},
			{"/v1/messages/count_tokens", `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"x [[mock:` + d + `]]"}]}`},
			{"/api/query", queryWith(d)},
			{"/api/query", `{"question":"How is churn? [[mock:` + d + `]]","context":{"churned":12},"stream":true}`},
		} {
			o := send(context.Background(), c, g.URL+p.path, p.body)
			require.NoError(t, o.err)
			calls++
			lastID = o.hdr.Get("X-Request-Id")
			codes[fmt.Sprintf("%s %d", p.path, o.code)]++
			fmt.Fprintf(&seen, "%s %d %v\n%s\n", p.path, o.code, o.hdr, o.body)
		}
	}
	waitFor(t, 5*time.Second, "every request logged", func() bool { return strings.Contains(g.Logs(), lastID) })
	all := seen.String()
	require.NotContains(t, all, testenv.MockKey, "the key never reaches a caller")
	require.NotContains(t, g.Logs(), testenv.MockKey, "nor a log line")
	require.Contains(t, all, "[redacted]", "the echoed fields reached the gateway, and were redacted")
	t.Logf("figure: %d calls against the mock echoing the key (echo_key_headers, echo_key_fields, mid-stream): 0 occurrences in responses or logs; answers %v", calls, codes)
}
