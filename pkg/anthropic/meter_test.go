package anthropic

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func docsStream(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/docs_basic_stream.sse")
	require.NoError(t, err)
	return b
}

func meter(chunks ...[]byte) *StreamMeter {
	m := NewStreamMeter()
	for _, c := range chunks {
		n, err := m.Write(c)
		if err != nil || n != len(c) {
			panic("StreamMeter.Write must accept everything")
		}
	}
	return m
}

// The docs' verbatim example, split at every possible byte boundary (and
// fed one byte at a time), must meter identically: upstream chunking is
// arbitrary.
func TestStreamMeterDocsExampleAnyChunking(t *testing.T) {
	stream := docsStream(t)
	check := func(t *testing.T, m *StreamMeter) {
		t.Helper()
		require.Equal(t, Usage{InputTokens: 25, OutputTokens: 15}, m.Usage())
		require.Equal(t, "claude-opus-4-8", m.Model())
		require.Equal(t, "end_turn", m.StopReason())
		require.True(t, m.Completed())
		require.False(t, m.Estimated())
		require.Empty(t, m.ErrorType())
		require.Equal(t, 8, m.Events())
	}
	t.Run("whole", func(t *testing.T) { check(t, meter(stream)) })
	for i := 0; i <= len(stream); i++ {
		check(t, meter(stream[:i], stream[i:]))
	}
	bytewise := NewStreamMeter()
	for i := range stream {
		_, _ = bytewise.Write(stream[i : i+1])
	}
	check(t, bytewise)
}

func TestStreamMeterLineEndings(t *testing.T) {
	stream := string(docsStream(t))
	crlf := strings.ReplaceAll(stream, "\n", "\r\n")
	cr := strings.ReplaceAll(stream, "\n", "\r")
	for name, s := range map[string]string{"crlf": crlf, "cr": cr} {
		t.Run(name, func(t *testing.T) {
			b := []byte(s)
			for i := 0; i <= len(b); i++ { // a "\r\n" split across writes is one line end
				m := meter(b[:i], b[i:])
				require.Equal(t, Usage{InputTokens: 25, OutputTokens: 15}, m.Usage(), "split at %d", i)
				require.True(t, m.Completed())
				require.Equal(t, 8, m.Events(), "split at %d", i)
			}
		})
	}
}

func sse(event, data string) string { return "event: " + event + "\ndata: " + data + "\n\n" }

func TestStreamMeterUsageRules(t *testing.T) {
	start := sse("message_start", `{"type":"message_start","message":{"model":"claude-sonnet-4-5-20250929","usage":{"input_tokens":410,"cache_creation_input_tokens":1200,"cache_read_input_tokens":3000,"cache_creation":{"ephemeral_5m_input_tokens":200,"ephemeral_1h_input_tokens":1000},"output_tokens":2}}}`)
	textDelta := sse("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"abcdefgh"}}`)
	tests := []struct {
		name      string
		stream    string
		want      Usage
		completed bool
		estimated bool
		errType   string
	}{
		{
			name: "several message_delta: the last cumulative value, not the sum",
			stream: start + textDelta +
				sse("message_delta", `{"type":"message_delta","delta":{"stop_reason":null},"usage":{"output_tokens":40}}`) +
				textDelta +
				sse("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":95}}`) +
				sse("message_stop", `{"type":"message_stop"}`),
			want: Usage{InputTokens: 410, CacheCreationInputTokens: 1200, CacheReadInputTokens: 3000,
				CacheCreation: &CacheCreation{Ephemeral5m: 200, Ephemeral1h: 1000}, OutputTokens: 95},
			completed: true,
		},
		{
			name: "message_delta overlays its non-null input and cache fields",
			stream: start + sse("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":10682,"cache_creation_input_tokens":null,"cache_read_input_tokens":0,"output_tokens":510}}`) +
				sse("message_stop", `{"type":"message_stop"}`),
			want: Usage{InputTokens: 10682, CacheCreationInputTokens: 1200, CacheReadInputTokens: 0,
				CacheCreation: &CacheCreation{Ephemeral5m: 200, Ephemeral1h: 1000}, OutputTokens: 510},
			completed: true,
		},
		{
			name:   "aborted after message_start and deltas: input billed, output estimated from what was seen",
			stream: start + textDelta + textDelta + textDelta, // 24 text bytes = 6 tokens
			want: Usage{InputTokens: 410, CacheCreationInputTokens: 1200, CacheReadInputTokens: 3000,
				CacheCreation: &CacheCreation{Ephemeral5m: 200, Ephemeral1h: 1000}, OutputTokens: 2 + 6},
			estimated: true,
		},
		{
			name: "mid-stream error event",
			stream: start + textDelta +
				sse("error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`),
			want: Usage{InputTokens: 410, CacheCreationInputTokens: 1200, CacheReadInputTokens: 3000,
				CacheCreation: &CacheCreation{Ephemeral5m: 200, Ephemeral1h: 1000}, OutputTokens: 2 + 2},
			estimated: true,
			errType:   "overloaded_error",
		},
		{
			name:    "unreadable error event still counts as an error",
			stream:  start + sse("error", `{not json`),
			want:    Usage{InputTokens: 410, CacheCreationInputTokens: 1200, CacheReadInputTokens: 3000, CacheCreation: &CacheCreation{Ephemeral5m: 200, Ephemeral1h: 1000}, OutputTokens: 2},
			errType: "api_error",
		},
		{
			name:   "nothing but a connection cut: zero usage",
			stream: "event: message_st",
			want:   Usage{},
		},
		{
			name: "negative counts from a broken upstream are not refunds",
			stream: sse("message_start", `{"type":"message_start","message":{"model":"m","usage":{"input_tokens":-50,"output_tokens":1}}}`) +
				sse("message_delta", `{"type":"message_delta","delta":{},"usage":{"output_tokens":-9}}`),
			want: Usage{},
		},
		{
			name: "data without event lines is classified by its type",
			stream: "data: " + `{"type":"message_start","message":{"model":"m","usage":{"input_tokens":7,"output_tokens":1}}}` + "\n\n" +
				"data: " + `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}` + "\n\n" +
				"data: " + `{"type":"message_stop"}` + "\n\n",
			want:      Usage{InputTokens: 7, OutputTokens: 3},
			completed: true,
		},
		{
			name: "multi-line data, comments and unknown events",
			stream: ": keep-alive\n\nevent: message_start\ndata: {\"type\":\"message_start\",\ndata: \"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n" +
				sse("brand_new_event", `{"type":"brand_new_event","usage":{"output_tokens":999999}}`) +
				sse("message_delta", `{"type":"message_delta","delta":{},"usage":{"output_tokens":4}}`),
			want: Usage{InputTokens: 5, OutputTokens: 4},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := meter([]byte(tt.stream))
			require.Equal(t, tt.want, m.Usage())
			require.Equal(t, tt.completed, m.Completed())
			require.Equal(t, tt.estimated, m.Estimated())
			require.Equal(t, tt.errType, m.ErrorType())
		})
	}
}

func TestStreamMeterUsageIsACopy(t *testing.T) {
	m := meter([]byte(sse("message_start", `{"type":"message_start","message":{"model":"m","usage":{"input_tokens":1,"output_tokens":1,"cache_creation":{"ephemeral_5m_input_tokens":5,"ephemeral_1h_input_tokens":0}}}}`)))
	u := m.Usage()
	u.CacheCreation.Ephemeral5m = 999
	require.Equal(t, int64(5), m.Usage().CacheCreation.Ephemeral5m)
}

// A multi-megabyte line (a broken or hostile upstream) is skipped without
// the meter holding more than one line's cap, and metering carries on.
func TestStreamMeterHugeLineSkipped(t *testing.T) {
	m := NewStreamMeter()
	_, _ = m.Write([]byte(sse("message_start", `{"type":"message_start","message":{"model":"m","usage":{"input_tokens":3,"output_tokens":1}}}`)))
	_, _ = m.Write([]byte("event: message_delta\ndata: {\"usage\":{\"output_tokens\":\""))
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for i := 0; i < 10<<20/len(chunk); i++ { // 10 MiB on one line
		_, _ = m.Write(chunk)
		require.LessOrEqual(t, cap(m.partial), 2*maxLineBytes)
	}
	_, _ = m.Write([]byte("\"}}\n\n"))
	require.Nil(t, m.partial, "the big buffer is released")
	require.Equal(t, Usage{InputTokens: 3, OutputTokens: 1}, m.Usage(), "the broken event is ignored")

	_, _ = m.Write([]byte(sse("message_delta", `{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":12}}`)))
	require.Equal(t, Usage{InputTokens: 3, OutputTokens: 12}, m.Usage())
	require.Equal(t, "max_tokens", m.StopReason())

	// A huge line delivered in a single Write is dropped as well.
	huge := append([]byte("data: "), bytes.Repeat([]byte("y"), maxLineBytes+10)...)
	_, _ = m.Write(append(append([]byte("event: message_delta\n"), huge...), "\n\n"...))
	require.Equal(t, Usage{InputTokens: 3, OutputTokens: 12}, m.Usage())
}

// Output tokens are estimated from the text of content deltas, not from
// their JSON envelope: thinking and tool input count, signatures do not.
func TestContentUnits(t *testing.T) {
	tests := []struct {
		data string
		want int64
	}{
		{`{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}`, 5},
		{`{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"location\": \"San Fra"}}`, 21},
		{`{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}`, 3},
		{`{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}}`, 0},
		{`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"日本"}}`, 8},
		{`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\u00e9\n"}}`, 5},
		{`{"type":"content_block_delta","delta":{"text":"unterminated`, 12},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, contentUnits([]byte(tt.data)), tt.data)
	}
}

func TestMeterJSON(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    Usage
		model   string
		wantErr string
	}{
		{
			name: "docs response",
			body: `{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",
				"content":[{"type":"text","text":"Hi! How can I help?"}],"stop_reason":"end_turn","stop_sequence":null,
				"usage":{"input_tokens":410,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,
				"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":585,"service_tier":"standard"}}`,
			want:  Usage{InputTokens: 410, OutputTokens: 585, CacheCreation: &CacheCreation{}, UsageExt: UsageExt{ServiceTier: "standard"}},
			model: "claude-sonnet-4-5-20250929",
		},
		{
			name:  "cache fields",
			body:  `{"type":"message","model":"claude-haiku-4-5","usage":{"input_tokens":3,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":9}}`,
			want:  Usage{InputTokens: 3, CacheCreationInputTokens: 100, CacheReadInputTokens: 2000, OutputTokens: 9},
			model: "claude-haiku-4-5",
		},
		{
			name: "price-changing fields",
			body: `{"type":"message","model":"claude-opus-4-6","usage":{"input_tokens":5,"output_tokens":7,
				"server_tool_use":{"web_search_requests":3,"web_fetch_requests":2},"speed":"fast","inference_geo":"us",
				"iterations":[{"type":"message","input_tokens":2,"output_tokens":3,"cache_creation_input_tokens":0,"cache_read_input_tokens":0},
				{"type":"message","input_tokens":3,"output_tokens":-4,"cache_creation_input_tokens":0,"cache_read_input_tokens":1}]}}`,
			want: Usage{InputTokens: 5, OutputTokens: 7, UsageExt: UsageExt{
				ServerToolUse: &ServerToolUse{WebSearchRequests: 3, WebFetchRequests: 2}, Speed: "fast", InferenceGeo: "us",
				Iterations: []IterationUsage{{Type: "message", InputTokens: 2, OutputTokens: 3}, {Type: "message", InputTokens: 3, CacheReadInputTokens: 1}},
			}},
			model: "claude-opus-4-6",
		},
		{name: "no usage", body: `{"type":"message","model":"m"}`, wantErr: "no usage"},
		{name: "error body", body: `{"type":"error","error":{"type":"api_error","message":"x"}}`, wantErr: "body is an error"},
		{name: "not JSON", body: `<html>`, wantErr: "metering response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, model, err := MeterJSON([]byte(tt.body))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, u)
			require.Equal(t, tt.model, model)
		})
	}
}

// FuzzStreamMeter feeds arbitrary bytes split at an arbitrary point: the
// meter must never panic, never report negative usage, and meter a stream
// the same however it is split.
func FuzzStreamMeter(f *testing.F) {
	f.Add(docsStream(f), uint16(17))
	f.Add([]byte(strings.ReplaceAll(string(docsStream(f)), "\n", "\r\n")), uint16(300))
	f.Add([]byte("data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":1}}}\r\r"), uint16(3))
	f.Add([]byte("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}\n\n"), uint16(0))
	f.Add([]byte("event: content_block_delta\ndata: {\"delta\":{\"text\":\"\\u12\"}}\n\n"), uint16(40))
	f.Fuzz(func(t *testing.T, stream []byte, split uint16) {
		at := int(split) % (len(stream) + 1)
		a := meter(stream)
		b := meter(stream[:at], stream[at:])
		ua, ub := a.Usage(), b.Usage()
		if ua.InputTokens < 0 || ua.OutputTokens < 0 || ua.CacheCreationInputTokens < 0 || ua.CacheReadInputTokens < 0 {
			t.Fatalf("negative usage %+v", ua)
		}
		if !reflect.DeepEqual(ua, ub) {
			t.Fatalf("split at %d changed usage: %+v vs %+v", at, ua, ub)
		}
		if a.Events() != b.Events() || a.Completed() != b.Completed() || a.ErrorType() != b.ErrorType() || a.Model() != b.Model() {
			t.Fatalf("split at %d changed the stream's shape", at)
		}
	})
}

// Many data lines that together exceed the cap drop the event instead of
// growing the buffer.
func TestStreamMeterEventDataIsCapped(t *testing.T) {
	m := NewStreamMeter()
	_, _ = m.Write([]byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":5},\"pad\":\"\n"))
	line := []byte("data: " + strings.Repeat("z", 64<<10) + "\n")
	for i := 0; i < 40; i++ { // 2.5 MiB of data lines
		_, _ = m.Write(line)
		require.LessOrEqual(t, cap(m.data), 2*maxLineBytes)
	}
	_, _ = m.Write([]byte("data: \"}}\n\n"))
	require.Equal(t, Usage{}, m.Usage())
	require.Equal(t, 1, m.Events())
	_, _ = m.Write([]byte(sse("message_start", `{"type":"message_start","message":{"usage":{"input_tokens":6,"output_tokens":1}}}`)))
	require.Equal(t, Usage{InputTokens: 6, OutputTokens: 1}, m.Usage())
}
