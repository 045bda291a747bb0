//go:build reliability

package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/services/gateway/internal/testenv"
)

// TestReliabilityUpstream529Storm: the upstream answers every call with 529.
// Each caller gets a clean 529/503 with Retry-After after at most three
// attempts; once enough attempts failed the circuit breaker opens and a
// concurrent storm of callers is refused at once without a single upstream
// call; after the cooldown one probe goes through, succeeds, and closes the
// breaker for everybody.
func TestReliabilityUpstream529Storm(t *testing.T) {
	mock := testenv.StartMock(t)
	const threshold, cooldown = 5, 3 * time.Second
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_UPSTREAM_MAX_RETRIES=2",
		"KEYWARD_UPSTREAM_BREAKER_THRESHOLD="+strconv.Itoa(threshold), "KEYWARD_UPSTREAM_BREAKER_COOLDOWN="+cooldown.String())
	mock.MockPost(t, "/_mock/config", `{"status":529}`)
	c := newClient(t, 30*time.Second)

	// Sequential callers until the breaker opens: each sees the upstream's
	// overload as a 529 (passthrough) with Retry-After, after bounded retries.
	var attemptsPerCall []int
	var lastCall time.Time // the breaker opened during the last of these calls, so not before it began
	for i := 0; i < 2*threshold && gw.Metric(t, "keyward_upstream_circuit_open") == 0; i++ {
		before := mockCalls(t, mock)
		lastCall = time.Now()
		o := send(context.Background(), c, gw.URL+"/v1/messages", messagesWith(false, 64, "status=529"))
		require.NoError(t, o.err)
		attempts := mockCalls(t, mock) - before
		attemptsPerCall = append(attemptsPerCall, attempts)
		require.Contains(t, []int{529, http.StatusServiceUnavailable}, o.code, string(o.body))
		require.NotEmpty(t, o.hdr.Get("Retry-After"), "every overload answer says when to retry")
		require.Equal(t, "true", o.hdr.Get("X-Should-Retry"))
		require.LessOrEqual(t, attempts, 3, "bounded: one attempt plus at most two retries")
		var e struct {
			Type  string `json:"type"`
			Error struct {
				Type string `json:"type"`
			} `json:"error"`
		}
		require.NoError(t, json.Unmarshal(o.body, &e), string(o.body))
		require.Equal(t, "overloaded_error", e.Error.Type, "Anthropic's shape, so SDKs back off")
	}
	require.Equal(t, 1.0, gw.Metric(t, "keyward_upstream_circuit_open"), "the breaker opened after %v attempts", attemptsPerCall)
	sum := 0
	for _, a := range attemptsPerCall {
		sum += a
	}
	require.Equal(t, threshold, sum, "the breaker opens at exactly %d consecutive failed attempts", threshold)

	// A storm while the breaker is open: every caller refused at once, with
	// Retry-After, and the upstream sees nothing.
	before := mockCalls(t, mock)
	storm := newTally()
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			url, body := gw.URL+"/v1/messages", messagesWith(false, 64, "status=529")
			if i%2 == 1 {
				url, body = gw.URL+"/api/query", queryBody
			}
			o := send(context.Background(), c, url, body)
			if o.err == nil && o.hdr.Get("Retry-After") == "" {
				o.code = -1 // counted apart: a refusal without Retry-After
			}
			storm.add(o)
		}(i)
	}
	wg.Wait()
	require.Equal(t, 40, storm.count(http.StatusServiceUnavailable), "all refused by the open breaker with Retry-After: %s", storm.String())
	require.Equal(t, before, mockCalls(t, mock), "no upstream call while the breaker is open")
	require.Less(t, storm.percentile(1), time.Second, "refusals are immediate")
	require.Equal(t, 40.0, gw.Metric(t, "keyward_upstream_requests_total", `code="circuit_open"`))

	// The upstream recovers; the breaker lets one probe through after the
	// cooldown, and it closes.
	mock.MockPost(t, "/_mock/config", `{}`)
	var closedAfter time.Duration
	probeDeadline := lastCall.Add(cooldown + 10*time.Second)
	for time.Now().Before(probeDeadline) {
		o := send(context.Background(), c, gw.URL+"/api/query", queryBody)
		require.NoError(t, o.err)
		if o.code == http.StatusOK {
			closedAfter = time.Since(lastCall)
			break
		}
		require.Equal(t, http.StatusServiceUnavailable, o.code, string(o.body))
		require.Equal(t, before, mockCalls(t, mock), "still no upstream call before the cooldown ends")
		time.Sleep(100 * time.Millisecond)
	}
	require.NotZero(t, closedAfter, "the breaker closes after a successful probe")
	require.GreaterOrEqual(t, closedAfter, cooldown-100*time.Millisecond, "no probe before the cooldown")
	require.Equal(t, 0.0, gw.Metric(t, "keyward_upstream_circuit_open"))
	after := newTally()
	for i := 0; i < 5; i++ {
		after.add(send(context.Background(), c, gw.URL+"/api/query", queryBody))
	}
	require.Equal(t, 5, after.count(http.StatusOK), after.String())
	t.Logf("figure: 529 storm: attempts per call %v (≤ 3 each), breaker open after %d failed attempts; 40/40 concurrent callers refused in ≤ %v with Retry-After and 0 upstream calls; closed by a probe %.1f s after the opening call began (cooldown %v)",
		attemptsPerCall, threshold, storm.percentile(1).Round(time.Millisecond), closedAfter.Seconds(), cooldown)
}

// TestReliabilitySlowUpstreamTimesOut: the upstream accepts calls but sends
// no response headers. Callers get a 504 when KEYWARD_UPSTREAM_HEADER_TIMEOUT
// passes — not a hang, and not after the upstream finally answers — and the
// gateway abandons the upstream calls.
func TestReliabilitySlowUpstreamTimesOut(t *testing.T) {
	mock := testenv.StartMock(t)
	const timeout = 1500 * time.Millisecond
	// The breaker is off so every call measures the timeout itself.
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_UPSTREAM_HEADER_TIMEOUT="+timeout.String(), "KEYWARD_UPSTREAM_BREAKER_THRESHOLD=0",
		"KEYWARD_CONFIG="+writeConfig(t, "limits:\n  max_concurrent_streams: 10\n"))
	mock.MockPost(t, "/_mock/config", `{"first_byte_ms":20000}`)
	c := newClient(t, 30*time.Second)
	cancelledBefore := mockStat(t, mock, "cancelled")

	cases := []struct{ name, path, body string }{
		{"query", "/api/query", queryBody},
		{"query stream", "/api/query", `{"question":"q","context":{},"stream":true}`},
		{"messages", "/v1/messages", messagesWith(false, 64, "first_byte_ms=20000")},
		{"messages stream", "/v1/messages", messagesWith(true, 64, "first_byte_ms=20000")},
	}
	tl := newTally()
	var wg sync.WaitGroup
	for _, tc := range cases {
		for i := 0; i < 3; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o := send(context.Background(), c, gw.URL+tc.path, tc.body)
				if o.err == nil && !strings.Contains(o.hdr.Get("Content-Type"), "application/json") {
					o.code = -o.code // a stream that started instead of a clean error
				}
				tl.add(o)
			}()
		}
	}
	wg.Wait()
	n := 3 * len(cases)
	t.Logf("figure: slow upstream: %d/%d concurrent calls answered 504 (header timeout %v): min %v, max %v",
		tl.count(http.StatusGatewayTimeout), n, timeout, tl.percentile(0).Round(time.Millisecond), tl.percentile(1).Round(time.Millisecond))
	require.Equal(t, n, tl.count(http.StatusGatewayTimeout), tl.String())
	require.GreaterOrEqual(t, tl.percentile(0), timeout-50*time.Millisecond, "not before the configured timeout")
	require.Less(t, tl.percentile(1), timeout+1500*time.Millisecond, "soon after the configured timeout, not when the upstream answers (20 s)")
	require.Eventually(t, func() bool { return mockStat(t, mock, "cancelled")-cancelledBefore >= n }, 5*time.Second, 50*time.Millisecond,
		"the gateway abandons every timed-out upstream call")
	require.Equal(t, float64(n), gw.Metric(t, "keyward_http_requests_total", `code="504"`))
}

// TestReliabilityUpstreamDropsMidStream: the upstream connection breaks (or
// the upstream sends an error event) after the stream has started. The client
// always gets an SSE error event and a cleanly terminated response — never a
// silently truncated stream that looks complete.
func TestReliabilityUpstreamDropsMidStream(t *testing.T) {
	mock := testenv.StartMock(t)
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_UPSTREAM_BREAKER_THRESHOLD=0")
	c := newClient(t, 30*time.Second)
	type tc struct {
		name, path, body, wantType string
	}
	var cases []tc
	for _, n := range []int{1, 3, 6} {
		cases = append(cases,
			tc{fmt.Sprintf("v1 drop after %d events", n), "/v1/messages", messagesWith(true, 512, fmt.Sprintf("drop_after=%d output_tokens=200", n)), "api_error"},
			tc{fmt.Sprintf("query drop after %d events", n), "/api/query", `{"question":"q [[mock:drop_after=` + strconv.Itoa(n) + ` output_tokens=200]]","context":{},"stream":true}`, ""},
		)
	}
	cases = append(cases,
		tc{"v1 upstream error event", "/v1/messages", messagesWith(true, 512, "error_after=4 output_tokens=200"), "overloaded_error"},
		tc{"query upstream error event", "/api/query", `{"question":"q [[mock:error_after=4 output_tokens=200]]","context":{},"stream":true}`, ""},
	)
	ended := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openStream(t, c, gw.URL+tc.path, tc.body)
			require.Equal(t, http.StatusOK, s.resp.StatusCode)
			require.NoError(t, s.drain(), "the response ends cleanly (terminated chunked body), not with a broken connection")
			name, data := s.last()
			require.Equal(t, "error", name, "the last event tells the client the stream failed: %v", s.events)
			require.NotContains(t, s.events, "message_stop")
			require.NotContains(t, s.events, "done")
			if tc.wantType != "" {
				var e struct {
					Type  string `json:"type"`
					Error struct {
						Type string `json:"type"`
					} `json:"error"`
				}
				require.NoError(t, json.Unmarshal([]byte(data), &e), data)
				require.Equal(t, "error", e.Type)
				require.Equal(t, tc.wantType, e.Error.Type)
			} else {
				var e map[string]any
				require.NoError(t, json.Unmarshal([]byte(data), &e), data)
				require.NotEmpty(t, e["message"])
			}
			ended++
		})
	}
	require.Zero(t, gw.Metric(t, "keyward_streams_active"))
	t.Logf("figure: upstream broke mid-stream %d times (drops and error events): %d/%d clients got an SSE error event and a clean end",
		len(cases), ended, len(cases))
}
