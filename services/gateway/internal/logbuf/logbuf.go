// Package logbuf batches log output into fewer write syscalls without ever
// going quiet.
//
// Every request writes one access-log line; written straight to stderr that
// is one write(2) per request. Writer collects lines in memory and writes
// them out when its buffer fills or at least every Interval. What it must
// not do is lose the log: a failed write (EAGAIN on a non-blocking pipe, a
// full disk) drops that one batch, counts it (WriteErrors, exported as
// keyward_log_write_errors_total) and the next batch is written as usual —
// unlike bufio.Writer, whose first error sticks and silences every later
// line. SyncAbove makes warnings and errors reach the destination before
// the call that logs them returns, behind whatever was buffered, so the
// lines that explain a crash are out before it. Close writes out the rest;
// lines written after Close go straight through.
package logbuf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures New. Zero values take the defaults.
type Options struct {
	// Size is the buffer size in bytes (default 64 KiB); a full buffer is
	// written out at once.
	Size int
	// Interval bounds how long a line waits in the buffer (default 100ms).
	Interval time.Duration
}

// Writer is a concurrency-safe buffered writer that flushes on a timer.
// Lines written with one Write call stay contiguous.
type Writer struct {
	mu     sync.Mutex
	dst    io.Writer
	buf    []byte
	size   int
	closed bool
	errs   atomic.Uint64
	stop   chan struct{}
	done   chan struct{}
}

var _ io.WriteCloser = (*Writer)(nil)

// New returns a Writer in front of w and starts its flush timer; Close
// stops it and writes out what is left.
func New(w io.Writer, opts Options) (*Writer, error) {
	if w == nil {
		return nil, errors.New("creating log buffer: nil writer")
	}
	if opts.Size < 0 || opts.Interval < 0 {
		return nil, fmt.Errorf("creating log buffer: size %d and interval %s must not be negative", opts.Size, opts.Interval)
	}
	if opts.Size == 0 {
		opts.Size = 64 << 10
	}
	if opts.Interval == 0 {
		opts.Interval = 100 * time.Millisecond
	}
	lw := &Writer{dst: w, buf: make([]byte, 0, opts.Size), size: opts.Size, stop: make(chan struct{}), done: make(chan struct{})}
	go lw.loop(opts.Interval)
	return lw, nil
}

func (lw *Writer) loop(every time.Duration) {
	defer close(lw.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-lw.stop:
			return
		case <-t.C:
			// A failed batch is counted in WriteErrors; there is no one
			// else to tell.
			_ = lw.Flush()
		}
	}
}

// Write buffers p. A line larger than the free space is written out after
// what is already buffered, in order. The error, if any, is that of a
// write made during this call; it does not affect later calls.
func (lw *Writer) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.closed {
		return len(p), lw.writeLocked(p)
	}
	var err error
	if len(lw.buf)+len(p) > lw.size {
		err = lw.flushLocked()
	}
	if len(p) >= lw.size {
		return len(p), errors.Join(err, lw.writeLocked(p))
	}
	lw.buf = append(lw.buf, p...)
	return len(p), err
}

// Flush writes out everything buffered.
func (lw *Writer) Flush() error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.flushLocked()
}

// WriteErrors is the number of batches (or direct writes) that failed and
// were dropped.
func (lw *Writer) WriteErrors() uint64 { return lw.errs.Load() }

func (lw *Writer) flushLocked() error {
	if len(lw.buf) == 0 {
		return nil
	}
	err := lw.writeLocked(lw.buf)
	// Written or dropped, the batch is done: a retry could repeat the
	// part a short write did deliver, and would hold up every later line.
	lw.buf = lw.buf[:0]
	return err
}

func (lw *Writer) writeLocked(p []byte) error {
	if _, err := lw.dst.Write(p); err != nil {
		lw.errs.Add(1)
		return fmt.Errorf("logbuf: %d bytes of log dropped: %w", len(p), err)
	}
	return nil
}

// Close stops the timer and writes out what is left. It is safe to call
// twice; later Writes go straight to the destination.
func (lw *Writer) Close() error {
	lw.mu.Lock()
	if lw.closed {
		lw.mu.Unlock()
		return nil
	}
	lw.closed = true
	lw.mu.Unlock()
	close(lw.stop)
	<-lw.done
	return lw.Flush()
}

// SyncAbove wraps h, a handler writing to w, so that a record at level or
// above is on its way to w's destination (after every line buffered before
// it) when Handle returns.
func SyncAbove(h slog.Handler, w *Writer, level slog.Leveler) slog.Handler {
	return syncHandler{h: h, w: w, level: level}
}

type syncHandler struct {
	h     slog.Handler
	w     *Writer
	level slog.Leveler
}

func (s syncHandler) Enabled(ctx context.Context, l slog.Level) bool { return s.h.Enabled(ctx, l) }

func (s syncHandler) Handle(ctx context.Context, r slog.Record) error {
	err := s.h.Handle(ctx, r)
	if r.Level >= s.level.Level() {
		err = errors.Join(err, s.w.Flush())
	}
	return err
}

func (s syncHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return syncHandler{h: s.h.WithAttrs(as), w: s.w, level: s.level}
}

func (s syncHandler) WithGroup(name string) slog.Handler {
	return syncHandler{h: s.h.WithGroup(name), w: s.w, level: s.level}
}
