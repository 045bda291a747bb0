package anthropic

import (
	"bytes"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// events splits a recorded SSE stream into its events (each with its
// blank-line terminator), so a test can cut it after any of them.
func events(t *testing.T, name string) [][]byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	require.NoError(t, err)
	var out [][]byte
	for len(b) > 0 {
		i := bytes.Index(b, []byte("\n\n"))
		require.GreaterOrEqual(t, i, 0)
		out = append(out, b[:i+2])
		b = b[i+2:]
	}
	return out
}

// A stream cut after each of its events settles at a bound that is never
// below what the API bills: the input known (or estimated), the output
// seen, and the whole thinking budget once a thinking block opened (the
// display:"omitted" stream shows nothing but a signature of a thinking
// block billed in full).
func TestStreamMeterBoundAtEveryPhase(t *testing.T) {
	b := Bounds{InputTokens: 300, MaxTokens: 8000, ThinkingBudget: 4000}
	type want struct {
		phase     StreamPhase
		estimated bool
		input     int64
		output    int64
	}
	tests := []struct {
		file string
		want []want // after 0, 1, 2, … events
	}{
		{"thinking_omitted_stream.sse", []want{
			{PhaseBeforeStart, true, 300, 64},      // nothing yet: estimate + the margin
			{PhaseBetweenBlocks, true, 1200, 65},   // message_start's input replaces the estimate
			{PhaseThinking, true, 1200, 4065},      // hidden thinking: the whole budget
			{PhaseThinking, true, 1200, 4066},      // the signature is not output text
			{PhaseBetweenBlocks, true, 1200, 4066}, // thinking billed though nothing was shown
			{PhaseContent, true, 1200, 4066},
			{PhaseContent, true, 1200, 4076}, // 42 bytes of text ≈ 11 tokens
			{PhaseBetweenBlocks, true, 1200, 4076},
			{PhaseBetweenBlocks, false, 1200, 3012}, // the final count is the truth
			{PhaseDone, false, 1200, 3012},
		}},
		{"thinking_summarized_stream.sse", []want{
			{PhaseBeforeStart, true, 300, 64},
			{PhaseBetweenBlocks, true, 800, 65},
			{PhaseThinking, true, 800, 4065},
			{PhaseThinking, true, 800, 4078}, // the summary seen, plus the budget
			{PhaseThinking, true, 800, 4078},
			{PhaseBetweenBlocks, true, 800, 4078},
			{PhaseContent, true, 800, 4078},
			{PhaseContent, true, 800, 4098},
			{PhaseBetweenBlocks, true, 800, 4098},
			{PhaseBetweenBlocks, false, 800, 2500},
			{PhaseDone, false, 800, 2500},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			evs := events(t, tt.file)
			require.Len(t, tt.want, len(evs)+1)
			for k := 0; k <= len(evs); k++ {
				m := NewStreamMeter()
				for _, e := range evs[:k] {
					_, _ = m.Write(e)
				}
				u, est := m.Bound(b)
				w := tt.want[k]
				require.Equal(t, w.phase, m.Phase(), "after %d events", k)
				require.Equal(t, w.estimated, est, "after %d events", k)
				require.Equal(t, w.input, u.InputTokens, "after %d events", k)
				require.Equal(t, w.output, u.OutputTokens, "after %d events", k)
			}
		})
	}
}

func TestStreamMeterBoundCapsAtMaxTokens(t *testing.T) {
	evs := events(t, "thinking_omitted_stream.sse")
	m := NewStreamMeter()
	for _, e := range evs[:3] {
		_, _ = m.Write(e)
	}
	u, est := m.Bound(Bounds{InputTokens: 10, MaxTokens: 2048, ThinkingBudget: 4000})
	require.True(t, est)
	require.Equal(t, int64(2048), u.OutputTokens, "output can never exceed max_tokens")
}

func TestStreamMeterReadsPriceChangingUsage(t *testing.T) {
	var all []byte
	for _, e := range events(t, "thinking_omitted_stream.sse") {
		all = append(all, e...)
	}
	m := meter(all)
	u := m.Usage()
	require.Equal(t, &ServerToolUse{WebSearchRequests: 2}, u.ServerToolUse)
	require.Equal(t, "fast", u.Speed)
	require.Equal(t, "us", u.InferenceGeo)
	require.Equal(t, int64(3012), u.OutputTokens)
}

// The watcher sees message_start, the thinking block, each threshold the
// output passes and message_delta; halting stops the meter at the end of
// the event that triggered it, and Write says how many bytes that was.
func TestStreamMeterWatcherHaltsAtEventBoundary(t *testing.T) {
	evs := events(t, "thinking_summarized_stream.sse")
	var all []byte
	for _, e := range evs {
		all = append(all, e...)
	}
	var seen []StreamPhase
	m := NewStreamMeter()
	m.Watch(func() (int64, bool) {
		seen = append(seen, m.Phase())
		return m.OutputSoFar() + 10, true
	}, 5)
	n, err := m.Write(all)
	require.NoError(t, err)
	require.Equal(t, len(all), n)
	require.Equal(t, []StreamPhase{PhaseBetweenBlocks, PhaseThinking, PhaseThinking, PhaseContent, PhaseBetweenBlocks}, seen)

	calls := 0
	m = NewStreamMeter()
	m.Watch(func() (int64, bool) {
		calls++
		return 0, m.Phase() != PhaseThinking // refuse the thinking budget
	}, 1<<40)
	n, err = m.Write(all)
	require.ErrorIs(t, err, ErrMeterHalted)
	require.Equal(t, len(evs[0])+len(evs[1]), n, "halted right after the thinking block's start event")
	require.True(t, m.Halted())
	require.Equal(t, 2, calls)
	n, err = m.Write([]byte("event: ping\n\n"))
	require.ErrorIs(t, err, ErrMeterHalted)
	require.Zero(t, n)
}

// A server tool's results are input billed only in the final usage: a
// stream cut after a server_tool_use block is charged the late-input bound.
func TestStreamMeterBoundAddsLateInputAfterServerTool(t *testing.T) {
	start := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":100,\"output_tokens\":1}}}\n\n"
	tool := "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"server_tool_use\",\"id\":\"srvtoolu_1\",\"name\":\"web_search\",\"input\":{}}}\n\n"
	b := Bounds{InputTokens: 50, MaxTokens: 1000, LateInputTokens: 20000}
	u, est := meter([]byte(start)).Bound(b)
	require.True(t, est)
	require.Equal(t, int64(100), u.InputTokens)
	u, est = meter([]byte(start + tool)).Bound(b)
	require.True(t, est)
	require.Equal(t, int64(20100), u.InputTokens)
	require.Equal(t, PhaseContent, meter([]byte(start+tool)).Phase())
}
