package anthropic

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// realisticStream is a few-KB stream shaped like a real short answer: one
// message_start, a text block of many small deltas with pings, the closing
// message_delta and message_stop.
func realisticStream() []byte {
	var b strings.Builder
	b.WriteString(sse("message_start", `{"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1250,"cache_creation_input_tokens":0,"cache_read_input_tokens":4000,"output_tokens":1}}}`))
	b.WriteString(sse("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`))
	for i := 0; i < 60; i++ {
		if i%20 == 0 {
			b.WriteString(sse("ping", `{"type": "ping"}`))
		}
		b.WriteString(sse("content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"MRR grew %d%% month over"}}`, i)))
	}
	b.WriteString(sse("content_block_stop", `{"type":"content_block_stop","index":0}`))
	b.WriteString(sse("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":310}}`))
	b.WriteString(sse("message_stop", `{"type":"message_stop"}`))
	return []byte(b.String())
}

// BenchmarkStreamMeter meters a whole stream fed in 512-byte reads; the
// JSON decoding of message_start and message_delta is the only allocation.
func BenchmarkStreamMeter(b *testing.B) {
	stream := realisticStream()
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		m := NewStreamMeter()
		for p := stream; len(p) > 0; {
			n := min(512, len(p))
			_, _ = m.Write(p[:n])
			p = p[n:]
		}
		if m.Usage().OutputTokens != 310 {
			b.Fatal("wrong usage")
		}
	}
}

// BenchmarkStreamMeterContentDelta is the hot path: one content_block_delta
// event per op, which must not allocate.
func BenchmarkStreamMeterContentDelta(b *testing.B) {
	event := []byte(sse("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"MRR grew 4% month over"}}`))
	m := NewStreamMeter()
	b.SetBytes(int64(len(event)))
	b.ReportAllocs()
	for b.Loop() {
		_, _ = m.Write(event)
	}
}

func TestStreamMeterContentDeltaDoesNotAllocate(t *testing.T) {
	event := []byte(sse("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"MRR grew 4% month over"}}`))
	m := NewStreamMeter()
	split := len(event) / 2
	allocs := testing.AllocsPerRun(1000, func() {
		_, _ = m.Write(event[:split]) // a line cut by a read boundary is buffered once, then reused
		_, _ = m.Write(event[split:])
	})
	if allocs != 0 {
		t.Fatalf("content_block_delta costs %v allocations", allocs)
	}
}

func benchRequestBody() []byte {
	var b strings.Builder
	b.WriteString(`{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,"system":"You are a careful SaaS analytics assistant.","messages":[`)
	for i := 0; i < 8; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		role := "user"
		if i%2 == 1 {
			role = "assistant"
		}
		fmt.Fprintf(&b, `{"role":%q,"content":[{"type":"text","text":%q}]}`, role, strings.Repeat("Churn in the enterprise segment fell. ", 12))
	}
	b.WriteString(`],"metadata":{"user_id":"h:5f1c"},"temperature":0.2}`)
	return []byte(b.String())
}

func BenchmarkParseMessageRequest(b *testing.B) {
	body := benchRequestBody()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseMessageRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEstimateInputTokens(b *testing.B) {
	body := benchRequestBody()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		EstimateInputTokens(body)
	}
}

func BenchmarkOutboundHeaders(b *testing.B) {
	in := http.Header{
		"Accept":                      {"application/json"},
		"Anthropic-Version":           {"2023-06-01"},
		"Anthropic-Beta":              {"prompt-caching-2024-07-31"},
		"Content-Type":                {"application/json"},
		"User-Agent":                  {"Anthropic/Python 0.121.0"},
		"X-Api-Key":                   {"sk-ant-api03-caller"},
		"X-Stainless-Lang":            {"python"},
		"X-Stainless-Retry-Count":     {"0"},
		"X-Stainless-Timeout":         {"600"},
		"X-Forwarded-For":             {"203.0.113.9"},
		"Connection":                  {"keep-alive"},
		"X-Stainless-Package-Version": {"0.121.0"},
	}
	b.ReportAllocs()
	for b.Loop() {
		OutboundHeaders(in)
	}
}
