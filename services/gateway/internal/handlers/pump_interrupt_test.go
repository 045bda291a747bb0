package handlers

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/anthropic"
)

// silentUpstream sends one complete event, then blocks in Read until it is
// closed — an upstream that stalls. An HTTP response body behaves the same:
// Close interrupts a blocked Read.
func silentUpstream(t *testing.T) *io.PipeReader {
	pr, pw := io.Pipe()
	go func() { _, _ = pw.Write([]byte(start)) }()
	t.Cleanup(func() { _ = pw.Close() })
	return pr
}

type failingWriter struct{ writes int }

func (w *failingWriter) Write(p []byte) (int, error) {
	w.writes++
	if w.writes > 1 { // the first chunk goes through, the keepalive does not
		return 0, errors.New("broken pipe")
	}
	return len(p), nil
}

// A stalled upstream cannot hold a stream (and its reservation, connection
// and memory) past the lifetime cap or the drain deadline, nor keep a dead
// client's stream open: the blocked read is interrupted.
func TestPumpInterruptsAStalledUpstream(t *testing.T) {
	old := heartbeatEvery
	heartbeatEvery = 30 * time.Millisecond
	defer func() { heartbeatEvery = old }()

	cases := []struct {
		name     string
		lifetime time.Duration
		shutdown func() context.Context
		w        io.Writer
		want     streamEnd
	}{
		{"lifetime", 80 * time.Millisecond, context.Background, io.Discard, endLifetime},
		{"drain deadline", time.Minute, func() context.Context {
			ctx, cancel := context.WithTimeout(context.Background(), 80*time.Millisecond)
			t.Cleanup(cancel)
			return ctx
		}, io.Discard, endShutdown},
		{"heartbeat to a gone client", time.Minute, context.Background, &failingWriter{}, endClientGone},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			began := time.Now()
			got := pump(context.Background(), c.shutdown(), c.lifetime, silentUpstream(t), c.w, func() {}, anthropic.NewStreamMeter())
			require.Equal(t, c.want, got)
			require.Less(t, time.Since(began), 5*time.Second, "the stalled read was not interrupted")
		})
	}
}

// The bytes read when a stream is cut are still metered: what was seen is
// what gets billed.
func TestPumpMetersTheLastChunkOfACutStream(t *testing.T) {
	body := &scripted{chunks: []string{start, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"" + "abcdefgh" + "\"}}\n\n"}, pause: 150 * time.Millisecond, end: io.EOF}
	meter := anthropic.NewStreamMeter()
	require.Equal(t, endLifetime, pump(context.Background(), context.Background(), 50*time.Millisecond, body, io.Discard, func() {}, meter))
	require.True(t, meter.Estimated(), "the delta that arrived after the cap was metered")
}
