// Package keyfile holds the upstream API key. A key given as a file (a
// mounted Kubernetes Secret) is re-read when the file changes, so rotating
// the Secret needs no restart.
package keyfile

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"sync/atomic"
	"time"
)

// Source returns the current key. It is safe for concurrent use.
type Source struct {
	path     string
	interval time.Duration
	log      *slog.Logger
	key      atomic.Pointer[string]
	stamp    fileStamp
	what     string // what the file holds, for the log
}

type fileStamp struct {
	size    int64
	modTime time.Time
	ino     string
}

// Static returns a Source holding a fixed key.
func Static(key string) *Source {
	s := &Source{}
	k := string(bytes.TrimSpace([]byte(key)))
	s.key.Store(&k)
	return s
}

// FromFile reads path now (a missing file is not fatal: the key is simply not
// loaded yet) and, once Watch runs, again whenever the file changes.
func FromFile(path string, interval time.Duration, log *slog.Logger) *Source {
	return FromFileAs("api key", path, interval, log)
}

// FromFileAs is FromFile for a secret other than the API key; what names it
// in the log lines ("admin token").
func FromFileAs(what, path string, interval time.Duration, log *slog.Logger) *Source {
	s := &Source{what: what, path: path, interval: interval, log: log}
	empty := ""
	s.key.Store(&empty)
	s.reload()
	return s
}

// Key returns the current key ("" when none is loaded).
func (s *Source) Key() string { return *s.key.Load() }

// Loaded reports whether a non-empty key is available.
func (s *Source) Loaded() bool { return s.Key() != "" }

// Watch polls the file until ctx ends. Polling (rather than inotify) also
// catches Kubernetes' atomic symlink swap of Secret volumes.
func (s *Source) Watch(ctx context.Context) {
	if s.path == "" {
		return
	}
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.reload()
		}
	}
}

func (s *Source) reload() {
	fi, err := os.Stat(s.path)
	if err != nil {
		if s.Loaded() {
			s.log.Warn(s.what+" file unreadable; keeping the last one", "path", s.path, "error", err.Error())
		}
		return
	}
	st := fileStamp{size: fi.Size(), modTime: fi.ModTime(), ino: inode(fi)}
	if st == s.stamp && s.Loaded() {
		return
	}
	b, err := os.ReadFile(s.path)
	if err != nil {
		s.log.Warn("reading "+s.what+" file failed; keeping the last one", "path", s.path, "error", err.Error())
		return
	}
	k := string(bytes.TrimSpace(b))
	if k == "" {
		s.log.Warn(s.what+" file is empty; keeping the last one", "path", s.path)
		return
	}
	s.stamp = st
	if k != s.Key() {
		s.key.Store(&k)
		// Never log the key, not even a prefix.
		s.log.Info(s.what+" loaded from file", "path", s.path)
	}
}
