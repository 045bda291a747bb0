package mock

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// lastBilled returns the billed usage recorded for the most recent /v1/messages call.
func lastBilled(t *testing.T, s *Server) Billed {
	t.Helper()
	reqs := s.rec.snapshot("/v1/messages", 1)
	require.Len(t, reqs, 1)
	return reqs[0].Billed
}

func billingOf(t *testing.T, s *Server) Billing {
	t.Helper()
	rec := serve(s, httptestRequest("GET", "/_mock/billing", ""))
	require.Equal(t, 200, rec.Code, rec.Body.String())
	var b Billing
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &b))
	return b
}

const thinkingEnabled = `"thinking":{"type":"enabled","budget_tokens":2048}`

func TestBilledEqualsUsageOfCompleteCalls(t *testing.T) {
	s, err := New(Options{APIKey: testKey})
	require.NoError(t, err)
	extra := []string{`"max_tokens":8000`, thinkingEnabled, `"speed":"fast"`, `"inference_geo":"us"`}
	// The helper's max_tokens comes first; a later duplicate key wins in encoding/json.
	m := decodeMessage(t, serve(s, apiRequest(t, "POST", "/v1/messages", body("plan [[mock:thinking_tokens=1500 output_tokens=40]]", extra...))))
	var raw map[string]any
	rec := serve(s, apiRequest(t, "POST", "/v1/messages", body("plan [[mock:thinking_tokens=1500 output_tokens=40]]", extra...)))
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &raw))
	u := raw["usage"].(map[string]any)
	require.Equal(t, "fast", u["speed"])
	require.Equal(t, "us", u["inference_geo"])
	require.EqualValues(t, 1540, num(u["output_tokens"]), "hidden thinking is billed as output")
	require.EqualValues(t, 1500, num(u["output_tokens_details"].(map[string]any)["thinking_tokens"]))
	require.EqualValues(t, 1540, m.Usage.OutputTokens)

	b := lastBilled(t, s)
	require.Equal(t, Billed{
		InputTokens: m.Usage.InputTokens, CacheCreation: CacheCreation{}, OutputTokens: 1540, ThinkingTokens: 1500,
		Speed: "fast", InferenceGeo: "us",
	}, b)

	// A stream of the same request bills the same.
	rec = serve(s, apiRequest(t, "POST", "/v1/messages", streamBody("plan [[mock:thinking_tokens=1500 output_tokens=40]]", extra...)))
	events := parseSSE(t, rec.Body.Bytes())
	final := events[len(events)-2]
	require.EqualValues(t, 1540, num(final.Data["usage"].(map[string]any)["output_tokens"]))
	require.Equal(t, b, lastBilled(t, s))

	// Errors and count_tokens bill nothing.
	requireAPIError(t, serve(s, apiRequest(t, "POST", "/v1/messages", body("x [[mock:status=529]]"))), 529, errOverloaded)
	require.Equal(t, Billed{Speed: "standard"}, lastBilled(t, s))
	require.Equal(t, 200, serve(s, apiRequest(t, "POST", "/v1/messages/count_tokens", body("x"))).Code)

	bill := billingOf(t, s)
	want := BillingTotals{Calls: 3, InputTokens: 3 * m.Usage.InputTokens, OutputTokens: 3 * 1540, ThinkingTokens: 3 * 1500}
	require.Equal(t, want, bill.Models["claude-sonnet-4-5"])
	require.Equal(t, want, bill.Total)
	require.Equal(t, []BillingGroup{{Model: "claude-sonnet-4-5", Speed: "fast", InferenceGeo: "us", BillingTotals: want}}, bill.Groups)

	// DELETE and /_mock/reset clear it.
	require.Equal(t, 200, serve(s, httptestRequest("DELETE", "/_mock/billing", "")).Code)
	require.Equal(t, BillingTotals{}, billingOf(t, s).Total)
}

// streamUntil opens a stream on a real connection, reads events until stop returns true for
// one, then hangs up. It returns the events read.
func streamUntil(t *testing.T, base, payload string, stop func(name, data string) bool) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := apiRequest(t, "POST", base+"/v1/messages", payload).WithContext(ctx)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	sc := bufio.NewScanner(resp.Body)
	var seen []string
	name := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			seen = append(seen, line)
			if stop(name, line) {
				cancel()
				return seen
			}
		}
	}
	t.Fatalf("stream ended before the stop condition; saw %d events", len(seen))
	return nil
}

// settled waits until no call is in flight, so every call's bill is recorded.
func settled(t *testing.T, s *Server) {
	t.Helper()
	require.Eventually(t, func() bool { return s.stats.inflight.Load() == 0 }, 5*time.Second, 5*time.Millisecond)
}

func TestBilledAbandonedStreams(t *testing.T) {
	s, base := newTestServer(t, Options{})
	// Each event waits 300 ms, far longer than the client needs to hang up after reading the
	// one it stops at, so the mock notices during the delay before the next event.
	ref := decodeMessage(t, serve(s, apiRequest(t, "POST", "/v1/messages", body("x"))))
	inputOf := func(prompt string) int64 {
		rec := serve(s, apiRequest(t, "POST", "/v1/messages/count_tokens", body(prompt)))
		var out struct {
			InputTokens int64 `json:"input_tokens"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
		return out.InputTokens
	}
	require.Positive(t, ref.Usage.InputTokens)

	t.Run("after an omitted thinking signature", func(t *testing.T) {
		prompt := "think [[mock:thinking_tokens=5000 event_delay_ms=300]]"
		streamUntil(t, base, streamBody(prompt, `"max_tokens":9000`, `"thinking":{"type":"enabled","budget_tokens":6000,"display":"omitted"}`),
			func(name, data string) bool { return strings.Contains(data, "signature_delta") })
		settled(t, s)
		b := lastBilled(t, s)
		require.EqualValues(t, 5000, b.OutputTokens, "all hidden thinking, nothing of the text not yet begun")
		require.EqualValues(t, 5000, b.ThinkingTokens)
		require.Equal(t, inputOf(prompt), b.InputTokens)
	})

	t.Run("inside the text", func(t *testing.T) {
		prompt := "write [[mock:output_tokens=100 event_delay_ms=300]]"
		deltas := 0
		streamUntil(t, base, streamBody(prompt), func(name, data string) bool {
			if strings.Contains(data, "text_delta") {
				deltas++
			}
			return deltas == 3
		})
		settled(t, s)
		// 400 bytes of text in 24-byte deltas: the three read plus the fourth, which was
		// generated when the hang-up was noticed: ceil(100 × 96 / 400) = 24 tokens.
		require.EqualValues(t, 24, lastBilled(t, s).OutputTokens)
	})

	t.Run("inside a web search", func(t *testing.T) {
		b := streamBody("news [[mock:web_search=2 event_delay_ms=300]]", searchTools)
		prompt := countTokens(t, s, b)
		streamUntil(t, base, b, func(name, data string) bool { return strings.Contains(data, `"server_tool_use"`) })
		settled(t, s)
		billed := lastBilled(t, s)
		require.Equal(t, ServerToolUse{WebSearchRequests: 1}, billed.ServerToolUse, "the second search was never issued")
		require.Equal(t, prompt+2000, billed.InputTokens, "the first search's results are billed as input")
		require.Positive(t, billed.OutputTokens, "the query was generated")
		require.Less(t, billed.OutputTokens, int64(40))
	})

	t.Run("before message_start", func(t *testing.T) {
		prompt := "wait [[mock:first_byte_ms=60000]]"
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := http.DefaultClient.Do(apiRequest(t, "POST", base+"/v1/messages", streamBody(prompt)).WithContext(ctx))
			done <- err
		}()
		require.Eventually(t, func() bool { return s.stats.inflight.Load() == 1 }, 2*time.Second, 5*time.Millisecond)
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
		settled(t, s)
		b := lastBilled(t, s)
		// count_tokens would wait too: count the same text with a zero delay of equal length.
		require.Equal(t, inputOf(strings.Replace(prompt, "60000", "00000", 1)), b.InputTokens,
			"the upstream accepted the call: its input is billed")
		require.Zero(t, b.OutputTokens)
	})

	t.Run("dropped mid-stream", func(t *testing.T) {
		resp, err := http.DefaultClient.Do(apiRequest(t, "POST", base+"/v1/messages", streamBody("x [[mock:drop_after=4 output_tokens=100]]")))
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		settled(t, s)
		// message_start, content_block_start, ping and one delta were sent; the second delta
		// was generated when the connection was cut: 48 of 400 bytes, 12 tokens.
		require.EqualValues(t, 12, lastBilled(t, s).OutputTokens)
	})

	bill := billingOf(t, s)
	require.EqualValues(t, 6, bill.Total.Calls)
	require.EqualValues(t, 1, bill.Total.ServerToolUse.WebSearchRequests)
	require.Greater(t, bill.Total.OutputTokens, ref.Usage.OutputTokens+5000+24+0+12)
}

func TestThinkingBlocks(t *testing.T) {
	s, err := New(Options{APIKey: testKey})
	require.NoError(t, err)
	thinking := func(display string) string {
		return `"thinking":{"type":"enabled","budget_tokens":2048,"display":"` + display + `"}`
	}

	t.Run("summarized JSON", func(t *testing.T) {
		rec := serve(s, apiRequest(t, "POST", "/v1/messages", body("why?", `"max_tokens":4096`, thinking("summarized"))))
		var m struct {
			Content []map[string]any `json:"content"`
			Usage   map[string]any   `json:"usage"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &m), rec.Body.String())
		require.Len(t, m.Content, 2)
		require.Equal(t, "thinking", m.Content[0]["type"])
		require.NotEmpty(t, m.Content[0]["thinking"])
		require.NotEmpty(t, m.Content[0]["signature"])
		require.Equal(t, "text", m.Content[1]["type"])
		// The default is half the budget.
		require.EqualValues(t, 1024, num(m.Usage["output_tokens_details"].(map[string]any)["thinking_tokens"]))
	})

	t.Run("omitted stream", func(t *testing.T) {
		rec := serve(s, apiRequest(t, "POST", "/v1/messages", streamBody("why?", `"max_tokens":4096`, thinking("omitted"))))
		events := parseSSE(t, rec.Body.Bytes())
		require.Equal(t, []string{"message_start", "content_block_start", "ping", "content_block_delta", "content_block_stop",
			"content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"}, collapse(eventNames(events)))
		require.Equal(t, map[string]any{"type": "thinking", "thinking": ""}, events[1].Data["content_block"])
		sig := events[3].Data
		require.EqualValues(t, 0, num(sig["index"]))
		require.Equal(t, "signature_delta", sig["delta"].(map[string]any)["type"])
		require.Equal(t, "content_block_stop", events[4].Name)
		require.EqualValues(t, 1, num(events[5].Data["index"]), "the text block follows at index 1")
	})

	t.Run("summarized stream", func(t *testing.T) {
		rec := serve(s, apiRequest(t, "POST", "/v1/messages", streamBody("why? [[mock:thinking_tokens=3000]]", `"max_tokens":4096`, thinking("summarized"))))
		events := parseSSE(t, rec.Body.Bytes())
		var kinds []string
		for _, e := range events {
			if e.Name == "content_block_delta" && num(e.Data["index"]) == 0 {
				kinds = append(kinds, e.Data["delta"].(map[string]any)["type"].(string))
			}
		}
		require.Greater(t, len(kinds), 2)
		require.Equal(t, "signature_delta", kinds[len(kinds)-1], "the signature comes last, just before content_block_stop")
		for _, k := range kinds[:len(kinds)-1] {
			require.Equal(t, "thinking_delta", k)
		}
		final := events[len(events)-2].Data["usage"].(map[string]any)
		require.EqualValues(t, 3000, num(final["output_tokens_details"].(map[string]any)["thinking_tokens"]))
		require.Greater(t, num(final["output_tokens"]), int64(3000))
	})

	t.Run("redacted", func(t *testing.T) {
		rec := serve(s, apiRequest(t, "POST", "/v1/messages", streamBody("x [[mock:redacted_thinking thinking_tokens=700]]", `"thinking":{"type":"adaptive"}`)))
		events := parseSSE(t, rec.Body.Bytes())
		cb := events[1].Data["content_block"].(map[string]any)
		require.Equal(t, "redacted_thinking", cb["type"])
		require.NotEmpty(t, cb["data"])
		require.Equal(t, "content_block_stop", events[3].Name, "a redacted block has no deltas")
		require.EqualValues(t, 700, lastBilled(t, s).ThinkingTokens)
	})

	t.Run("thinking uses max_tokens first", func(t *testing.T) {
		rec := serve(s, apiRequest(t, "POST", "/v1/messages", body("x [[mock:thinking_tokens=5000]]", `"max_tokens":3000`, thinkingEnabled)))
		m := decodeMessage(t, rec)
		require.Equal(t, stopMaxToken, m.StopReason)
		require.EqualValues(t, 3000, m.Usage.OutputTokens)
		require.Len(t, m.Content, 1, "no room left for text")
	})

	t.Run("validation", func(t *testing.T) {
		for _, tt := range []struct{ extra, msg string }{
			{`"thinking":{"type":"enabled"}`, "budget_tokens: Field required"},
			{`"thinking":{"type":"enabled","budget_tokens":100}`, "greater than or equal to 1024"},
			{`"thinking":{"type":"enabled","budget_tokens":2048}`, "max_tokens"},
			{`"thinking":{"type":"sometimes"}`, "thinking.type"},
			{`"thinking":{"type":"adaptive","display":"full"}`, "thinking.display"},
			{`"thinking":"yes"`, "thinking: Input should be a valid dictionary"},
			{`"speed":"warp"`, "speed"},
			{`"inference_geo":"Mars!"`, "inference_geo"},
		} {
			e := requireAPIError(t, serve(s, apiRequest(t, "POST", "/v1/messages", body("x", tt.extra))), 400, errInvalidRequest)
			require.Contains(t, e.Error.Message, tt.msg)
		}
		e := requireAPIError(t, serve(s, apiRequest(t, "POST", "/v1/messages", body("x [[mock:thinking_tokens=5]]"))), 400, errInvalidRequest)
		require.Contains(t, e.Error.Message, "need thinking")
	})
}

// A client that has read a whole reply finds its bill in /_mock/billing and
// /_mock/requests at once: the bill is booked before the reply's last bytes,
// not when the handler returns after them.
func TestBillBookedBeforeTheReplyEnds(t *testing.T) {
	s, url := newTestServer(t, Options{})
	for i := 1; i <= 50; i++ {
		stream := i%2 == 0
		extra := []string{}
		if stream {
			extra = append(extra, `"stream":true`)
		}
		resp, err := http.DefaultClient.Do(apiRequest(t, "POST", url+"/v1/messages", body("hi [[mock:output_tokens=30]]", extra...)))
		require.NoError(t, err)
		_, err = io.Copy(io.Discard, resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, int64(i), billingOf(t, s).Total.Calls, "call %d (stream %t)", i, stream)
		b := lastBilled(t, s)
		require.Equal(t, int64(30), b.OutputTokens, "call %d (stream %t)", i, stream)
	}
}
