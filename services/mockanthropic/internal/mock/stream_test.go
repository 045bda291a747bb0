package mock

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func streamBody(text string, extra ...string) string {
	return body(text, append([]string{`"stream":true`}, extra...)...)
}

func TestStreamEventSequence(t *testing.T) {
	s, err := New(Options{APIKey: testKey})
	require.NoError(t, err)
	prompt := "Tell me about churn in one paragraph"
	rec := serve(s, apiRequest(t, "POST", "/v1/messages", streamBody(prompt, `"system":"be brief"`)))
	require.Equal(t, 200, rec.Code)
	require.Equal(t, "text/event-stream; charset=utf-8", rec.Header().Get("Content-Type"))
	require.True(t, strings.HasPrefix(rec.Header().Get("request-id"), "req_"))
	require.NotEmpty(t, rec.Header().Get("anthropic-organization-id"))

	events := parseSSE(t, rec.Body.Bytes())
	require.Equal(t, []string{"message_start", "content_block_start", "ping", "content_block_delta",
		"content_block_stop", "message_delta", "message_stop"}, collapse(eventNames(events)))

	start := events[0].Data["message"].(map[string]any)
	require.True(t, strings.HasPrefix(start["id"].(string), "msg_"))
	require.Equal(t, "claude-sonnet-4-5", start["model"])
	require.Empty(t, start["content"])
	require.Nil(t, start["stop_reason"])
	startUsage := start["usage"].(map[string]any)
	require.EqualValues(t, 1, num(startUsage["output_tokens"]), "message_start carries a provisional output count")
	for _, k := range []string{"input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "cache_creation", "service_tier"} {
		require.Contains(t, startUsage, k)
	}

	var text strings.Builder
	deltas := 0
	for _, e := range events {
		if e.Name == "content_block_delta" {
			deltas++
			require.EqualValues(t, 0, num(e.Data["index"]))
			d := e.Data["delta"].(map[string]any)
			require.Equal(t, "text_delta", d["type"])
			text.WriteString(d["text"].(string))
		}
	}
	require.GreaterOrEqual(t, deltas, 3, "several deltas, as from the real API")

	final := events[len(events)-2]
	require.Equal(t, "end_turn", final.Data["delta"].(map[string]any)["stop_reason"])
	out := num(final.Data["usage"].(map[string]any)["output_tokens"])

	// The streamed text and usage equal the non-streamed reply to the same request.
	m := decodeMessage(t, serve(s, apiRequest(t, "POST", "/v1/messages", body(prompt, `"system":"be brief"`))))
	require.Equal(t, m.Content[0].Text, text.String())
	require.Equal(t, m.Usage.OutputTokens, out)
	require.Equal(t, m.Usage.InputTokens, num(startUsage["input_tokens"]))
}

func TestStreamUsageDeltasAreCumulative(t *testing.T) {
	s, err := New(Options{APIKey: testKey})
	require.NoError(t, err)
	rec := serve(s, apiRequest(t, "POST", "/v1/messages", streamBody("go [[mock:usage_deltas=4 output_tokens=100]]")))
	events := parseSSE(t, rec.Body.Bytes())
	var outs []int64
	var stops []any
	for _, e := range events {
		if e.Name == "message_delta" {
			outs = append(outs, num(e.Data["usage"].(map[string]any)["output_tokens"]))
			stops = append(stops, e.Data["delta"].(map[string]any)["stop_reason"])
		}
	}
	require.Equal(t, []int64{25, 50, 75, 100}, outs)
	require.Equal(t, []any{nil, nil, nil, "end_turn"}, stops)
	require.Equal(t, "message_stop", events[len(events)-1].Name)
}

func TestStreamErrorAfter(t *testing.T) {
	s, err := New(Options{APIKey: testKey})
	require.NoError(t, err)
	tests := []struct {
		directive string
		n         int
		errType   string
	}{
		{"[[mock:error_after=3]]", 3, errOverloaded},
		{"[[mock:error_after=5 error_type=api_error]]", 5, errAPI},
		{"[[mock:error_after=0]]", 0, errOverloaded},
	}
	for _, tt := range tests {
		t.Run(tt.directive, func(t *testing.T) {
			rec := serve(s, apiRequest(t, "POST", "/v1/messages", streamBody("x "+tt.directive)))
			require.Equal(t, 200, rec.Code, "a mid-stream error arrives after a 200")
			events := parseSSE(t, rec.Body.Bytes())
			require.Len(t, events, tt.n+1, "exactly n events, then the error, then the end")
			last := events[tt.n]
			require.Equal(t, "error", last.Name)
			require.Equal(t, tt.errType, last.Data["error"].(map[string]any)["type"])
			require.Equal(t, rec.Header().Get("request-id"), last.Data["request_id"])
		})
	}
	st := s.stats.snapshot()
	require.EqualValues(t, 3, st.StreamErrors)
	require.EqualValues(t, 3, st.Faults)
}

func TestStreamDropAfter(t *testing.T) {
	s, base := newTestServer(t, Options{})
	resp, err := http.DefaultClient.Do(apiRequest(t, "POST", base+"/v1/messages", streamBody("x [[mock:drop_after=4]]")))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF, "the connection must end without a proper end of body")
	require.Equal(t, 4, strings.Count(string(b), "event: "), string(b))
	require.NotContains(t, string(b), "event: error")
	require.Eventually(t, func() bool { return s.stats.snapshot().Dropped == 1 }, time.Second, 5*time.Millisecond)
}

func TestStreamEventDelayFlushesEachEvent(t *testing.T) {
	_, base := newTestServer(t, Options{})
	const delay = 40 * time.Millisecond
	resp, err := http.DefaultClient.Do(apiRequest(t, "POST", base+"/v1/messages", streamBody("hi [[mock:event_delay_ms=40]]")))
	require.NoError(t, err)
	defer resp.Body.Close()
	start := time.Now()
	sc := bufio.NewScanner(resp.Body)
	var arrivals []time.Duration
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "event: ") {
			arrivals = append(arrivals, time.Since(start))
		}
	}
	require.NoError(t, sc.Err())
	require.GreaterOrEqual(t, len(arrivals), 8)
	// Each event is flushed on its own: the client sees them spread out, not in one burst.
	total := arrivals[len(arrivals)-1] - arrivals[0]
	require.GreaterOrEqual(t, total, time.Duration(len(arrivals)-1)*delay*9/10)
	require.Less(t, arrivals[0], delay, "the first event is not delayed")
}

func TestFirstByteDelay(t *testing.T) {
	_, base := newTestServer(t, Options{})
	for _, b := range []string{body("slow [[mock:first_byte_ms=150]]"), streamBody("slow [[mock:first_byte_ms=150]]")} {
		start := time.Now()
		resp, err := http.DefaultClient.Do(apiRequest(t, "POST", base+"/v1/messages", b))
		require.NoError(t, err)
		require.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond, "headers arrive only after the delay")
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
	}
}

// TestClientCancellation is the property gateway tests build on: when the client goes away,
// the mock stops promptly and counts the request as cancelled.
func TestClientCancellation(t *testing.T) {
	tests := []struct {
		name string
		body string
		// readFirst reads one line before cancelling, so the stream is known to be running.
		readFirst bool
	}{
		{"slow stream", streamBody("x [[mock:event_delay_ms=200 output_tokens=2000]]"), true},
		{"hang", body("x [[mock:hang]]"), false},
		{"hang stream", streamBody("x [[mock:hang]]"), false},
		{"first byte wait", body("x [[mock:first_byte_ms=30000]]"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, base := newTestServer(t, Options{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req := apiRequest(t, "POST", base+"/v1/messages", tt.body).WithContext(ctx)
			done := make(chan error, 1)
			go func() {
				resp, err := http.DefaultClient.Do(req)
				if err == nil {
					if tt.readFirst {
						// Only the cut-off matters here, not this read.
						_, _ = bufio.NewReader(resp.Body).ReadString('\n')
						cancel()
					}
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				done <- err
			}()
			if !tt.readFirst {
				require.Eventually(t, func() bool { return s.stats.snapshot().InFlight == 1 }, 2*time.Second, 5*time.Millisecond)
				inFlight := s.rec.snapshot("/v1/messages", 0)
				require.Len(t, inFlight, 1, "recorded on arrival, before it is answered")
				require.Zero(t, inFlight[0].Status)
				cancel()
			}
			err := <-done
			require.True(t, errors.Is(err, context.Canceled), "client error: %v", err)
			cancelledAt := time.Now()
			require.Eventually(t, func() bool {
				st := s.stats.snapshot()
				return st.Cancelled == 1 && st.InFlight == 0 && st.OpenStreams == 0
			}, time.Second, 5*time.Millisecond, "the mock must notice the cancellation within a second")
			require.Less(t, time.Since(cancelledAt), time.Second)
			reqs := s.rec.snapshot("/v1/messages", 0)
			require.Len(t, reqs, 1)
			require.Equal(t, outcomeCancelled, reqs[0].Outcome)
		})
	}
}

func TestOpenStreamsGauge(t *testing.T) {
	s, base := newTestServer(t, Options{})
	resp, err := http.DefaultClient.Do(apiRequest(t, "POST", base+"/v1/messages", streamBody("x [[mock:event_delay_ms=100]]")))
	require.NoError(t, err)
	defer resp.Body.Close()
	_, err = bufio.NewReader(resp.Body).ReadString('\n')
	require.NoError(t, err)
	require.EqualValues(t, 1, s.stats.snapshot().OpenStreams)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.Eventually(t, func() bool { return s.stats.snapshot().OpenStreams == 0 }, time.Second, 5*time.Millisecond)
	require.EqualValues(t, 1, s.stats.snapshot().Streams)
}

func TestStreamMaxTokensAndStopSequence(t *testing.T) {
	s, err := New(Options{APIKey: testKey})
	require.NoError(t, err)
	b := `{"model":"claude-sonnet-4-5","max_tokens":3,"stream":true,"messages":[{"role":"user","content":"a long question indeed"}]}`
	events := parseSSE(t, serve(s, apiRequest(t, "POST", "/v1/messages", b)).Body.Bytes())
	final := events[len(events)-2].Data
	require.Equal(t, "max_tokens", final["delta"].(map[string]any)["stop_reason"])
	require.EqualValues(t, 3, num(final["usage"].(map[string]any)["output_tokens"]))
	var text string
	for _, e := range events {
		if e.Name == "content_block_delta" {
			text += e.Data["delta"].(map[string]any)["text"].(string)
		}
	}
	require.Equal(t, "Mock answe", text[:10])
	require.LessOrEqual(t, len(text), 12)

	b = `{"model":"claude-sonnet-4-5","max_tokens":300,"stream":true,"stop_sequences":["System"],"messages":[{"role":"user","content":"q"}]}`
	events = parseSSE(t, serve(s, apiRequest(t, "POST", "/v1/messages", b)).Body.Bytes())
	delta := events[len(events)-2].Data["delta"].(map[string]any)
	require.Equal(t, "stop_sequence", delta["stop_reason"])
	require.Equal(t, "System", delta["stop_sequence"])
	raw, _ := json.Marshal(events)
	require.NotContains(t, string(raw), "System prompt")
}
