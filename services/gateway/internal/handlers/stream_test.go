package handlers

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/anthropic"
)

// scripted is an upstream body that yields chunks with pauses, then an error.
type scripted struct {
	chunks []string
	pause  time.Duration
	end    error
	i      int
}

func (s *scripted) Read(p []byte) (int, error) {
	if s.i >= len(s.chunks) {
		return 0, s.end
	}
	if s.i > 0 {
		time.Sleep(s.pause)
	}
	n := copy(p, s.chunks[s.i])
	s.i++
	return n, nil
}

type lockedWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

const start = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n"
const stop = "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":7}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"

func TestPumpHeartbeatsOnlyBetweenEvents(t *testing.T) {
	old := heartbeatEvery
	heartbeatEvery = 20 * time.Millisecond
	defer func() { heartbeatEvery = old }()

	// A silent upstream after a complete event gets keepalives; a silent
	// upstream in the middle of an event must not (it would corrupt it).
	body := &scripted{chunks: []string{start, "event: ping\ndata: {\"ty", "pe\":\"ping\"}\n\n", stop}, pause: 120 * time.Millisecond, end: io.EOF}
	w := &lockedWriter{}
	meter := anthropic.NewStreamMeter()
	end := pump(context.Background(), context.Background(), time.Minute, body, w, func() {}, meter)
	require.Equal(t, endComplete, end)
	out := w.String()
	require.Contains(t, out, start+": keepalive\n\n", "keepalive after a complete event")
	require.Contains(t, out, "data: {\"type\":\"ping\"}", "the split event arrives intact")
	require.NotContains(t, out, "{\"ty: keepalive", "never inside an event")
	require.EqualValues(t, 7, meter.Usage().OutputTokens)
}

func TestPumpEndings(t *testing.T) {
	cases := []struct {
		name     string
		body     io.Reader
		lifetime time.Duration
		want     streamEnd
	}{
		{"complete", &scripted{chunks: []string{start, stop}, end: io.EOF}, time.Minute, endComplete},
		{"closed before message_stop", &scripted{chunks: []string{start}, end: io.EOF}, time.Minute, endUpstream},
		{"upstream error mid-stream", &scripted{chunks: []string{start}, end: errors.New("connection reset")}, time.Minute, endUpstream},
		{"lifetime cap", &scripted{chunks: []string{start, start, start}, pause: 200 * time.Millisecond, end: io.EOF}, 50 * time.Millisecond, endLifetime},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := pump(context.Background(), context.Background(), c.lifetime, c.body, io.Discard, func() {}, anthropic.NewStreamMeter())
			require.Equal(t, c.want, got)
		})
	}
	t.Run("shutdown", func(t *testing.T) {
		shutdown, cancel := context.WithCancel(context.Background())
		cancel()
		body := &scripted{chunks: []string{start, start}, pause: time.Second, end: io.EOF}
		require.Equal(t, endShutdown, pump(context.Background(), shutdown, time.Minute, body, io.Discard, func() {}, anthropic.NewStreamMeter()))
	})
	t.Run("error event text", func(t *testing.T) {
		ev := string(errorEvent(endMessage(endLifetime)))
		require.True(t, strings.HasPrefix(ev, "event: error\ndata: {"))
		require.Contains(t, ev, `"timeout_error"`)
	})
}
