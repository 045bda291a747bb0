// Package logbuf batches log output into fewer write syscalls.
//
// Every request writes one access-log line. Written straight to stderr that
// is one write(2) per request — on a loopback-heavy 2-core box about 7 µs of
// a proxied request's ~120 µs of CPU. Writer collects lines in memory and
// writes them out when its buffer fills or at least every Interval, so a
// busy gateway writes hundreds of lines per syscall. The cost is that up to
// Interval of lines can be lost if the process dies without Close (SIGKILL,
// a runtime crash); a graceful exit loses nothing.
package logbuf

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"
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
	buf    *bufio.Writer
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

var _ io.WriteCloser = (*Writer)(nil)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("logbuf: writer closed")

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
	lw := &Writer{buf: bufio.NewWriterSize(w, opts.Size), stop: make(chan struct{}), done: make(chan struct{})}
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
			// A failed flush is reported to the next Write; there is no
			// one to tell here.
			_ = lw.Flush()
		}
	}
}

// Write buffers p. A line larger than the free space is written out with
// what is already buffered, in order.
func (lw *Writer) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.closed {
		return 0, ErrClosed
	}
	return lw.buf.Write(p)
}

// Flush writes out everything buffered.
func (lw *Writer) Flush() error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.buf.Buffered() == 0 {
		return nil
	}
	return lw.buf.Flush()
}

// Close stops the timer and writes out what is left. It is safe to call
// twice; later Writes fail with ErrClosed.
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
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.buf.Flush()
}
