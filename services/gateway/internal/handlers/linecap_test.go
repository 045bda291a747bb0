package handlers

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/anthropic"
)

func TestLineCapPassesWholeLinesOnly(t *testing.T) {
	var out bytes.Buffer
	l := &lineCap{w: &out}
	for _, chunk := range []string{"event: a\nda", "ta: {\"x\"", ":1}\n\n", "event: b\ndata: {}\n\n"} {
		n, err := l.Write([]byte(chunk))
		require.NoError(t, err)
		require.Equal(t, len(chunk), n)
		require.True(t, out.Len() == 0 || out.Bytes()[out.Len()-1] == '\n', "never half a line: %q", out.String())
	}
	require.Equal(t, "event: a\ndata: {\"x\":1}\n\nevent: b\ndata: {}\n\n", out.String())
}

// endless is an upstream that sends one event, then a line that never ends.
type endless struct {
	sent  int64
	first bool
}

func (e *endless) Read(p []byte) (int, error) {
	if !e.first {
		e.first = true
		return copy(p, start+"event: content_block_delta\ndata: "), nil
	}
	for i := range p {
		p[i] = 'p'
	}
	e.sent += int64(len(p))
	return len(p), nil
}

func TestPumpEndsAnEndlessLineOnEveryPath(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  func(io.Writer) io.Writer
	}{
		{"passthrough", func(w io.Writer) io.Writer { return w }},
		{"api translator", func(w io.Writer) io.Writer { return &textDeltas{out: w} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			body := &endless{}
			end := pump(context.Background(), context.Background(), time.Minute, body, tc.out(&out), func() {}, anthropic.NewStreamMeter())
			require.Equal(t, endLongLine, end)
			require.Less(t, body.sent, int64(maxSSELine+64<<10), "ended at the cap, not later")
			require.NotContains(t, out.String(), "pppp", "no part of the long line reached the caller")
			require.Less(t, out.Len(), 4096)
		})
	}
	ev := string(errorEvent(endMessage(endLongLine)))
	require.True(t, strings.HasPrefix(ev, "event: error\ndata: {"))
	require.Contains(t, ev, "longer than 1 MiB")
}

func TestTextDeltasBoundsItsOwnBuffer(t *testing.T) {
	tr := &textDeltas{out: io.Discard}
	chunk := bytes.Repeat([]byte("y"), 64<<10)
	var err error
	for i := 0; i < 20 && err == nil; i++ {
		_, err = tr.Write(chunk)
	}
	require.ErrorIs(t, err, errLineTooLong)
	require.LessOrEqual(t, cap(tr.partial), 2*maxSSELine)
}

func TestLineCapRedactsTheKeyEvenWhenSplitAcrossReads(t *testing.T) {
	var out bytes.Buffer
	l := &lineCap{w: &out, rd: anthropic.NewRedactor("mock-key-42")}
	for _, chunk := range []string{"event: error\ndata: {\"error\":{\"type\":\"mock-k", "ey-42\"}}\n\n"} {
		_, err := l.Write([]byte(chunk))
		require.NoError(t, err)
	}
	require.Equal(t, "event: error\ndata: {\"error\":{\"type\":\"[redacted]\"}}\n\n", out.String())
}
