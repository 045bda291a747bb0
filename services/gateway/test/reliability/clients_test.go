//go:build reliability

package reliability

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/services/gateway/internal/testenv"
)

// headerTimeout is the public listener's ReadHeaderTimeout (server.go).
const headerTimeout = 5 * time.Second

// TestReliabilitySlowlorisClosedAtHeaderTimeout: 200 connections each send a
// request line and then one header byte per second, never finishing the
// headers. The gateway closes every one of them at its header timeout, and
// meanwhile /health keeps answering fast.
func TestReliabilitySlowlorisClosedAtHeaderTimeout(t *testing.T) {
	mock := testenv.StartMock(t)
	gw := testenv.StartGateway(t, mock.URL)
	addr := strings.TrimPrefix(gw.URL, "http://")
	const conns = 200

	var mu sync.Mutex
	var closedAfter []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < conns; i++ {
		conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		opened := time.Now()
		_, err = conn.Write([]byte("POST /api/query HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\n"))
		require.NoError(t, err)
		wg.Add(2)
		done := make(chan struct{})
		go func() { // the slow writer: one header byte per second
			defer wg.Done()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					if _, err := conn.Write([]byte("X")); err != nil {
						return
					}
				}
			}
		}()
		go func() { // the reader notices when the gateway hangs up
			defer wg.Done()
			defer close(done)
			_ = conn.SetReadDeadline(time.Now().Add(3 * headerTimeout))
			_, err := conn.Read(make([]byte, 512))
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return // still open after 15 s: not recorded, fails below
			}
			mu.Lock()
			closedAfter = append(closedAfter, time.Since(opened))
			mu.Unlock()
		}()
	}
	opening := time.Since(start)

	// /health while the attack runs.
	health := newTally()
	hc := newClient(t, 5*time.Second)
	for time.Since(start) < headerTimeout+time.Second {
		t0 := time.Now()
		resp, err := hc.Get(gw.URL + "/health")
		o := outcome{err: err, dur: time.Since(t0)}
		if err == nil {
			o.code = resp.StatusCode
			resp.Body.Close()
		}
		health.add(o)
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()

	require.Len(t, closedAfter, conns, "every slowloris connection is closed by the gateway")
	lo, hi := percentile(closedAfter, 0), percentile(closedAfter, 1)
	t.Logf("figure: slowloris: %d/%d connections closed %v–%v after opening (header timeout %v, opened in %v); /health %d/%d 200, p50 %v, max %v",
		len(closedAfter), conns, lo.Round(10*time.Millisecond), hi.Round(10*time.Millisecond), headerTimeout, opening.Round(time.Millisecond),
		health.count(http.StatusOK), health.total(), health.percentile(0.5).Round(time.Millisecond), health.percentile(1).Round(time.Millisecond))
	require.GreaterOrEqual(t, lo, headerTimeout-100*time.Millisecond, "not closed before the header timeout")
	require.Less(t, hi, headerTimeout+2*time.Second, "closed at the header timeout, not later")
	require.Equal(t, health.total(), health.count(http.StatusOK), health.String())
	require.Less(t, health.percentile(1), 500*time.Millisecond, "/health stays fast during the attack")
}

// TestReliabilityLoadSheddingRefusesAtOnce: with limits.max_inflight = 4 and
// four slow calls in flight, a burst of 30 more is refused immediately with
// 503 and Retry-After — no queueing behind the slow calls — while /health
// stays up; the slow calls complete and capacity returns.
func TestReliabilityLoadSheddingRefusesAtOnce(t *testing.T) {
	mock := testenv.StartMock(t)
	const capacity, burst = 4, 30
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_CONFIG="+writeConfig(t, "limits:\n  max_inflight: 4\n"))
	c := newClient(t, 30*time.Second)

	slow := newTally()
	var swg sync.WaitGroup
	for i := 0; i < capacity; i++ {
		swg.Add(1)
		go func() {
			defer swg.Done()
			slow.add(send(context.Background(), c, gw.URL+"/api/query", queryWith("first_byte_ms=2500")))
		}()
	}
	require.Eventually(t, func() bool { return mockStat(t, mock, "in_flight") == capacity }, 5*time.Second, 10*time.Millisecond)

	shed := newTally()
	var bwg sync.WaitGroup
	var bad []string
	var mu sync.Mutex
	for i := 0; i < burst; i++ {
		bwg.Add(1)
		go func(i int) {
			defer bwg.Done()
			path, body := "/api/query", queryBody
			if i%2 == 1 {
				path, body = "/v1/messages", messagesWith(false, 64, "status=200")
			}
			o := send(context.Background(), c, gw.URL+path, body)
			shed.add(o)
			if o.err != nil || o.code != http.StatusServiceUnavailable || o.hdr.Get("Retry-After") == "" || !json.Valid(o.body) {
				mu.Lock()
				bad = append(bad, path+": "+string(o.body))
				mu.Unlock()
			}
		}(i)
	}
	bwg.Wait()
	code, _, _ := testenv.Do(t, http.MethodGet, gw.URL+"/health", nil, "")
	require.Equal(t, http.StatusOK, code, "/health is never shed")
	require.Equal(t, capacity, mockStat(t, mock, "in_flight"), "the refusals came while the slow calls were still running")
	swg.Wait()

	t.Logf("figure: load shedding at max_inflight=%d: %d/%d extra requests refused with 503 + Retry-After in ≤ %v (p50 %v) while %d slow calls ran; slow calls %s",
		capacity, shed.count(http.StatusServiceUnavailable), burst, shed.percentile(1).Round(time.Millisecond), shed.percentile(0.5).Round(time.Millisecond), capacity, slow.String())
	require.Empty(t, bad, "every shed request gets a 503 with Retry-After and a JSON error")
	require.Less(t, shed.percentile(1), 500*time.Millisecond, "refused at once, not queued")
	require.Equal(t, capacity, slow.count(http.StatusOK), "the admitted calls are not disturbed: %s", slow.String())
	require.Equal(t, float64(burst), gw.Metric(t, "keyward_ratelimit_rejections_total", `limit="inflight"`))
	o := send(context.Background(), c, gw.URL+"/api/query", queryBody)
	require.Equal(t, http.StatusOK, o.code, "capacity is back once the slow calls finish: %s", o.body)
}

// TestReliabilityClientDisconnectCycles: 100 times a client opens a stream
// (alternating /v1/messages and /api/query), reads the first text delta and
// hangs up. Each time the gateway cancels its upstream call within a second;
// afterwards no stream is left open anywhere and the gateway's goroutine
// count is back to its baseline.
func TestReliabilityClientDisconnectCycles(t *testing.T) {
	mock := testenv.StartMock(t)
	gw := testenv.StartGateway(t, mock.URL)
	c := newClient(t, 30*time.Second)
	bodies := []struct{ path, body, firstDelta string }{
		{"/v1/messages", messagesWith(true, 4000, "event_delay_ms=30 output_tokens=3000"), "event: content_block_delta"},
		{"/api/query", `{"question":"long [[mock:event_delay_ms=30 output_tokens=3000]]","context":{},"stream":true}`, "event: delta"},
	}
	// One complete call first, so pooled upstream connections exist in the baseline.
	o := send(context.Background(), c, gw.URL+"/api/query", queryBody)
	require.Equal(t, http.StatusOK, o.code)
	c.CloseIdleConnections()
	require.Eventually(t, func() bool { return gw.Metric(t, "keyward_inflight_requests") == 0 }, 5*time.Second, 20*time.Millisecond)
	base := gw.Metric(t, "go_goroutines")

	const cycles = 100
	var worst time.Duration
	for i := 0; i < cycles; i++ {
		b := bodies[i%2]
		before := mockStat(t, mock, "cancelled")
		ctx, cancel := context.WithCancel(context.Background())
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, gw.URL+b.path, strings.NewReader(b.body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "cycle %d", i)
		sc := bufio.NewScanner(resp.Body)
		got := false
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), b.firstDelta) {
				got = true
				break
			}
		}
		require.True(t, got, "cycle %d: a text delta arrived before the disconnect", i)
		hungUp := time.Now()
		cancel()
		resp.Body.Close()
		deadline := time.Now().Add(time.Second)
		for mockStat(t, mock, "cancelled") <= before {
			require.True(t, time.Now().Before(deadline), "cycle %d (%s): the upstream call was not cancelled within 1 s", i, b.path)
			time.Sleep(5 * time.Millisecond)
		}
		worst = max(worst, time.Since(hungUp))
	}
	require.Eventually(t, func() bool { return mockStat(t, mock, "open_streams") == 0 }, 5*time.Second, 20*time.Millisecond, "no upstream stream left open")
	require.Eventually(t, func() bool { return gw.Metric(t, "keyward_streams_active") == 0 }, 5*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return gw.Metric(t, "go_goroutines") <= base+2 }, 10*time.Second, 50*time.Millisecond,
		"goroutines back to the baseline of %v (now %v)", base, gw.Metric(t, "go_goroutines"))
	t.Logf("figure: %d stream disconnects: upstream cancelled every time, within %v at worst; goroutines %v → %v; 0 streams left open",
		cycles, worst.Round(time.Millisecond), base, gw.Metric(t, "go_goroutines"))
}
