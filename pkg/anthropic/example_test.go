package anthropic_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"

	"github.com/keyward/keyward/pkg/anthropic"
)

const exampleStream = `event: message_start
data: {"type":"message_start","message":{"model":"claude-sonnet-4-5-20250929","usage":{"input_tokens":25,"cache_read_input_tokens":1000,"output_tokens":1}}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello!"}}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}

event: message_stop
data: {"type":"message_stop"}

`

func ExampleStreamMeter() {
	// In the gateway the meter sits on a tee of the upstream body while it is
	// copied to the caller: io.Copy(io.MultiWriter(w, meter), resp.Body).
	meter := anthropic.NewStreamMeter()
	_, _ = io.Copy(meter, strings.NewReader(exampleStream))

	u := meter.Usage()
	fmt.Println(meter.Model(), meter.StopReason(), meter.Completed())
	fmt.Println("input", u.InputTokens, "cache read", u.CacheReadInputTokens, "output", u.OutputTokens)
	// Output:
	// claude-sonnet-4-5-20250929 end_turn true
	// input 25 cache read 1000 output 15
}

func ExampleMeterJSON() {
	body := []byte(`{"type":"message","model":"claude-haiku-4-5","content":[{"type":"text","text":"Hi"}],
		"usage":{"input_tokens":12,"output_tokens":3}}`)
	u, model, err := anthropic.MeterJSON(body)
	fmt.Println(model, u.TotalTokens(), err)
	// Output: claude-haiku-4-5 15 <nil>
}

func ExamplePriceTable_Cost() {
	prices := anthropic.DefaultPrices()
	usd, priced := prices.Cost("claude-sonnet-4-5-20250929", anthropic.Usage{
		InputTokens:              410,
		CacheCreationInputTokens: 2000,
		CacheCreation:            &anthropic.CacheCreation{Ephemeral1h: 2000},
		OutputTokens:             585,
	})
	fmt.Printf("$%.6f %v\n", usd, priced)

	_, priced = prices.Cost("some-future-model", anthropic.Usage{InputTokens: 1})
	fmt.Println("unknown model priced:", priced)
	// Output:
	// $0.022005 true
	// unknown model priced: false
}

func ExamplePriceTable_Lookup() {
	p, ok := anthropic.DefaultPrices().Lookup("claude-haiku-4-5-20251001")
	fmt.Println(p.Input, p.Output, ok)
	// Output: 1 5 true
}

func ExamplePriceTable_ReserveCost() {
	usd, _ := anthropic.DefaultPrices().ReserveCost("claude-haiku-4-5", 1000, 1024)
	fmt.Printf("reserve $%.4f\n", usd)
	// Output: reserve $0.0071
}

func ExampleParseMessageRequest() {
	body := []byte(`{"model":"claude-haiku-4-5","max_tokens":256,"stream":true,
		"messages":[{"role":"user","content":"Hi"}],"temperature":0.3}`)
	req, err := anthropic.ParseMessageRequest(body)
	fmt.Println(req.Model, req.MaxTokens, req.Stream, req.Fields, err)

	_, err = anthropic.ParseMessageRequest([]byte(`{"model":"a","model":"b"}`))
	fmt.Println(err, errors.Is(err, anthropic.ErrInvalidRequest))
	// Output:
	// claude-haiku-4-5 256 true [model max_tokens stream messages temperature] <nil>
	// invalid request body: field "model": appears more than once true
}

func ExampleEstimateInputTokens() {
	body := []byte(`{"model":"claude-haiku-4-5","max_tokens":256,"messages":[{"role":"user","content":"What is MRR?"}]}`)
	fmt.Println(anthropic.EstimateInputTokens(body))
	// Output: 28
}

func ExampleOutboundHeaders() {
	in := http.Header{
		"Authorization":   {"Bearer caller-token"},
		"X-Api-Key":       {"caller-key"},
		"X-Forwarded-For": {"203.0.113.9"},
		"Anthropic-Beta":  {"prompt-caching-2024-07-31"},
	}
	out := anthropic.OutboundHeaders(in)
	fmt.Println(out.Get("Anthropic-Version"), out.Get("Anthropic-Beta"), out.Get("Content-Type"))
	fmt.Println(out.Get("Authorization") == "", out.Get("X-Api-Key") == "", out.Get("X-Forwarded-For") == "")
	// Output:
	// 2023-06-01 prompt-caching-2024-07-31 application/json
	// true true true
}

func ExampleCopyResponseHeaders() {
	upstream := http.Header{
		"Content-Type":                           {"text/event-stream; charset=utf-8"},
		"Request-Id":                             {"req_018EeWyXxfu5pfWkrYcMdjWG"},
		"Anthropic-Ratelimit-Requests-Remaining": {"49"},
		"Anthropic-Organization-Id":              {"org-1"},
	}
	toCaller := http.Header{}
	anthropic.CopyResponseHeaders(toCaller, upstream)
	fmt.Println(len(toCaller), toCaller.Get("Request-Id"))
	// Output: 2 req_018EeWyXxfu5pfWkrYcMdjWG
}

func ExampleNewErrorBody() {
	fmt.Println(string(anthropic.NewErrorBody("rate_limit_error", "Too many requests", "req_1")))
	// Output: {"type":"error","error":{"type":"rate_limit_error","message":"Too many requests"},"request_id":"req_1"}
}

func ExampleClient_Do() {
	// A stand-in upstream: overloaded once, then a message.
	var calls atomic.Int32
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(529)
			_, _ = w.Write(anthropic.NewErrorBody("overloaded_error", "Overloaded", ""))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"type":"message","model":"claude-haiku-4-5","usage":{"input_tokens":9,"output_tokens":4},"key_seen":%q}`,
			r.Header.Get("X-Api-Key"))
	}))
	defer upstream.Close()

	client, err := anthropic.NewClient(anthropic.ClientConfig{
		BaseURL:     upstream.URL,
		APIKey:      func() string { return "server-key" }, // e.g. re-read from a mounted Secret
		BaseBackoff: 1,                                     // keep the example fast
		OnAttempt: func(attempt, status int, err error) {
			fmt.Println("attempt", attempt, "status", status)
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.CloseIdleConnections()

	caller := http.Header{"X-Api-Key": {"caller-key"}, "Content-Type": {"application/json"}}
	resp, err := client.Do(context.Background(), anthropic.Call{
		Method: http.MethodPost,
		Path:   "/v1/messages",
		Header: anthropic.OutboundHeaders(caller),
		Body:   []byte(`{"model":"claude-haiku-4-5","max_tokens":64,"messages":[{"role":"user","content":"Hi"}]}`),
	})
	var apiErr *anthropic.APIError
	switch {
	case errors.As(err, &apiErr):
		fmt.Println("upstream said", apiErr.Status, apiErr.Type)
		return
	case errors.Is(err, anthropic.ErrCircuitOpen):
		fmt.Println("503, retry after", client.BreakerRetryAfter())
		return
	case err != nil:
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	u, model, _ := anthropic.MeterJSON(body)
	fmt.Println(resp.StatusCode, model, u.InputTokens, u.OutputTokens)
	fmt.Println(strings.Contains(string(body), `"key_seen":"server-key"`))
	// Output:
	// attempt 0 status 529
	// attempt 1 status 200
	// 200 claude-haiku-4-5 9 4
	// true
}
