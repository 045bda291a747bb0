package main

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// onceFailing fails its first write, as a full non-blocking stderr pipe
// does, then works.
type onceFailing struct {
	mu     sync.Mutex
	failed bool
	b      strings.Builder
}

func (w *onceFailing) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.failed {
		w.failed = true
		return 0, errors.New("resource temporarily unavailable")
	}
	return w.b.Write(p)
}

func (w *onceFailing) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func TestLoggerKeepsLoggingAfterAFailedWrite(t *testing.T) {
	w := &onceFailing{}
	log, closeLog, writeErrors := newLogger(w, "info")
	log.Info("buffered, then lost with the failed batch")
	log.Warn("the write of this batch fails")
	require.Equal(t, 1.0, writeErrors())
	log.Error("upstream key rejected", "status", 401)
	require.Contains(t, w.String(), "upstream key rejected", "an error line is written before Error returns")
	log.Info("a request")
	closeLog()
	out := w.String()
	require.Contains(t, out, "a request", "closing writes out the buffered lines")
	require.NotContains(t, out, "lost with the failed batch")
	require.Equal(t, 2, strings.Count(out, "\n"))
	require.Equal(t, 1.0, writeErrors())
}
