package logbuf

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// recorder counts the writes that reach the destination (the syscalls a
// file or pipe would see).
type recorder struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes++
	return r.b.Write(p)
}

func (r *recorder) snapshot() (string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.b.String(), r.writes
}

func TestLinesArriveWithinTheIntervalWithoutClose(t *testing.T) {
	rec := &recorder{}
	lw, err := New(rec, Options{Interval: 20 * time.Millisecond})
	require.NoError(t, err)
	defer lw.Close()
	_, err = lw.Write([]byte("one line\n"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { s, _ := rec.snapshot(); return s == "one line\n" }, 2*time.Second, 5*time.Millisecond,
		"a quiet gateway's last lines must not sit in the buffer")
}

func TestCloseWritesEverythingOut(t *testing.T) {
	rec := &recorder{}
	lw, err := New(rec, Options{Interval: time.Hour})
	require.NoError(t, err)
	_, _ = lw.Write([]byte("a\n"))
	_, _ = lw.Write([]byte("b\n"))
	s, _ := rec.snapshot()
	require.Empty(t, s, "buffered until the interval or Close")
	require.NoError(t, lw.Close())
	s, _ = rec.snapshot()
	require.Equal(t, "a\nb\n", s)
	require.NoError(t, lw.Close(), "a second Close is harmless")
	_, err = lw.Write([]byte("late\n"))
	require.NoError(t, err)
	s, _ = rec.snapshot()
	require.Equal(t, "a\nb\nlate\n", s, "a line logged after Close (a goroutine still winding down) is written at once, not lost")
}

// Many goroutines logging at once (handlers do) produce whole lines, all of
// them, in far fewer writes than lines.
func TestConcurrentLinesStayWholeAndAreBatched(t *testing.T) {
	rec := &recorder{}
	lw, err := New(rec, Options{Size: 4 << 10, Interval: time.Hour})
	require.NoError(t, err)
	log := slog.New(slog.NewJSONHandler(lw, nil))
	const goroutines, perG = 8, 250
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perG {
				log.Info("request", "g", g, "i", i, "pad", strings.Repeat("x", 40))
			}
		}()
	}
	wg.Wait()
	require.NoError(t, lw.Close())
	out, writes := rec.snapshot()
	sc := bufio.NewScanner(strings.NewReader(out))
	lines := 0
	for sc.Scan() {
		require.True(t, strings.HasPrefix(sc.Text(), `{"time":`) && strings.HasSuffix(sc.Text(), `}`), "torn line %q", sc.Text())
		lines++
	}
	require.Equal(t, goroutines*perG, lines)
	require.Less(t, writes, goroutines*perG/10, "lines must be batched into few writes")
}

func TestLongLineKeepsOrder(t *testing.T) {
	rec := &recorder{}
	lw, err := New(rec, Options{Size: 16, Interval: time.Hour})
	require.NoError(t, err)
	_, _ = lw.Write([]byte("short\n"))
	long := strings.Repeat("L", 100) + "\n"
	_, _ = lw.Write([]byte(long))
	_, _ = lw.Write([]byte("tail\n"))
	require.NoError(t, lw.Close())
	s, _ := rec.snapshot()
	require.Equal(t, "short\n"+long+"tail\n", s)
}

// flaky fails its first failures writes (as a non-blocking stderr pipe
// answers EAGAIN when full), then works.
type flaky struct {
	recorder
	failures int
}

func (f *flaky) Write(p []byte) (int, error) {
	f.mu.Lock()
	if f.failures > 0 {
		f.failures--
		f.mu.Unlock()
		return 0, errors.New("write /dev/stderr: resource temporarily unavailable")
	}
	f.mu.Unlock()
	return f.recorder.Write(p)
}

// One failed write loses that batch only: it is counted, and the lines
// after it are written as if nothing happened (bufio.Writer's sticky error
// would have silenced the process for good).
func TestAFailedWriteDropsOneBatchAndRecovers(t *testing.T) {
	dst := &flaky{failures: 1}
	lw, err := New(dst, Options{Interval: time.Hour})
	require.NoError(t, err)
	_, _ = lw.Write([]byte("lost 1\n"))
	_, _ = lw.Write([]byte("lost 2\n"))
	require.ErrorContains(t, lw.Flush(), "resource temporarily unavailable")
	require.Equal(t, uint64(1), lw.WriteErrors())

	_, err = lw.Write([]byte("after\n"))
	require.NoError(t, err)
	require.NoError(t, lw.Flush(), "the error does not stick")
	_, _ = lw.Write([]byte("at close\n"))
	require.NoError(t, lw.Close())
	s, _ := dst.snapshot()
	require.Equal(t, "after\nat close\n", s)
	require.Equal(t, uint64(1), lw.WriteErrors())

	// The same through a logger, with a long line written directly.
	dst = &flaky{failures: 1}
	lw, err = New(dst, Options{Size: 32, Interval: time.Hour})
	require.NoError(t, err)
	_, err = lw.Write([]byte(strings.Repeat("x", 64)))
	require.Error(t, err)
	_, err = lw.Write([]byte(strings.Repeat("y", 64)))
	require.NoError(t, err)
	require.NoError(t, lw.Close())
	s, _ = dst.snapshot()
	require.Equal(t, strings.Repeat("y", 64), s)
	require.Equal(t, uint64(1), lw.WriteErrors())
}

// A warning reaches the destination before Warn returns, behind the info
// lines buffered before it; info lines alone wait for the timer.
func TestWarningsAreWrittenAtOnceInOrder(t *testing.T) {
	rec := &recorder{}
	lw, err := New(rec, Options{Interval: time.Hour})
	require.NoError(t, err)
	defer lw.Close()
	opts := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}
	log := slog.New(SyncAbove(slog.NewTextHandler(lw, opts), lw, slog.LevelWarn)).With("svc", "gw")
	log.Info("first")
	log.Info("second")
	s, _ := rec.snapshot()
	require.Empty(t, s, "info lines are batched")
	log.Warn("trouble")
	s, _ = rec.snapshot()
	require.Equal(t, "level=INFO msg=first svc=gw\nlevel=INFO msg=second svc=gw\nlevel=WARN msg=trouble svc=gw\n", s)
	log.WithGroup("g").Error("worse", "k", 1)
	s, _ = rec.snapshot()
	require.True(t, strings.HasSuffix(s, "level=ERROR msg=worse svc=gw g.k=1\n"), s)
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    io.Writer
		opts Options
	}{
		{"nil writer", nil, Options{}},
		{"negative size", io.Discard, Options{Size: -1}},
		{"negative interval", io.Discard, Options{Interval: -time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.w, tc.opts)
			require.ErrorContains(t, err, "creating log buffer")
		})
	}
}

func ExampleNew() {
	lw, err := New(os.Stdout, Options{Interval: 100 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	// Close on the way out: what is still buffered is written then.
	defer lw.Close()
	log := slog.New(slog.NewTextHandler(lw, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	log.Info("request", "route", "/v1/messages", "status", 200)
	_ = lw.Flush()
	// Output: level=INFO msg=request route=/v1/messages status=200
}

// BenchmarkAccessLogLine is one access-log line through slog's JSON
// handler into a pipe (as a container's stderr is), written directly and
// through Writer.
func BenchmarkAccessLogLine(b *testing.B) {
	for _, buffered := range []bool{false, true} {
		b.Run(fmt.Sprintf("buffered=%t", buffered), func(b *testing.B) {
			r, w, err := os.Pipe()
			require.NoError(b, err)
			drained := make(chan struct{})
			go func() { _, _ = io.Copy(io.Discard, r); close(drained) }()
			var dst io.Writer = w
			var lw *Writer
			if buffered {
				lw, err = New(w, Options{})
				require.NoError(b, err)
				dst = lw
			}
			log := slog.New(slog.NewJSONHandler(dst, nil))
			b.ReportAllocs()
			for b.Loop() {
				log.LogAttrs(b.Context(), slog.LevelInfo, "request",
					slog.String("request_id", "kw_70223f8b1db35d640e16df9b"), slog.String("method", "POST"),
					slog.String("route", "/v1/messages"), slog.Int("status", 200), slog.Float64("latency_ms", 1.014),
					slog.String("client_ip", "127.0.0.1"), slog.String("model", "claude-sonnet-4-5"),
					slog.Int64("input_tokens", 57), slog.Int64("output_tokens", 64))
			}
			b.StopTimer()
			if lw != nil {
				require.NoError(b, lw.Close())
			}
			_ = w.Close()
			<-drained
			_ = r.Close()
		})
	}
}
