package server

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// TokenFile is the gateway's admin token, read from a file (a mounted
// secret) and read again whenever the file changes, so rotating the secret
// on the gateway and here needs no restart of the dashboard.
type TokenFile struct {
	path string

	mu    sync.Mutex
	size  int64
	mtime time.Time
	token string
}

// errEmptyToken: an empty file would switch the page on with no password.
var errEmptyToken = errors.New("the file is empty")

// NewTokenFile reads path now and fails when it cannot be read or holds
// nothing: the operator page must not start without its token.
func NewTokenFile(path string) (*TokenFile, error) {
	f := &TokenFile{path: path}
	if _, err := f.Token(); err != nil {
		return nil, err
	}
	return f, nil
}

// Token returns the current token. When the file has become unreadable or
// empty it keeps the last good token (a secret being swapped), and reports
// an error only when it never had one. The error never holds the token.
func (f *TokenFile) Token() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fi, err := os.Stat(f.path)
	if err == nil && fi.Size() == f.size && fi.ModTime().Equal(f.mtime) && f.token != "" {
		return f.token, nil
	}
	if err == nil {
		var b []byte
		if b, err = os.ReadFile(f.path); err == nil {
			if t := string(bytes.TrimSpace(b)); t != "" {
				f.token, f.size, f.mtime = t, fi.Size(), fi.ModTime()
				return t, nil
			}
			err = errEmptyToken
		}
	}
	if f.token != "" {
		return f.token, nil
	}
	return "", fmt.Errorf("reading the admin token file %s: %w", f.path, err)
}
