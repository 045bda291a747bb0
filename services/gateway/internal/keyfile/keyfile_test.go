package keyfile

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFileKeyRotatesWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "api-key")
	logs := &lockedBuffer{}
	src := FromFile(path, 10*time.Millisecond, slog.New(slog.NewTextHandler(logs, nil)))
	require.False(t, src.Loaded(), "a missing file means not loaded yet, not a crash")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Watch(ctx)

	require.NoError(t, os.WriteFile(path, []byte("sk-ant-first\n"), 0o600))
	require.Eventually(t, func() bool { return src.Key() == "sk-ant-first" }, 2*time.Second, 5*time.Millisecond, "trailing newline trimmed")

	// Kubernetes swaps Secret volumes atomically through a symlink; model it with a rename.
	tmp := filepath.Join(dir, "api-key.tmp")
	require.NoError(t, os.WriteFile(tmp, []byte("sk-ant-second"), 0o600))
	require.NoError(t, os.Rename(tmp, path))
	require.Eventually(t, func() bool { return src.Key() == "sk-ant-second" }, 2*time.Second, 5*time.Millisecond)

	// An empty or vanished file keeps the last good key: wait until the
	// watcher has seen each (it says so), then check the key.
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "api key file is empty") }, 2*time.Second, 5*time.Millisecond)
	require.Equal(t, "sk-ant-second", src.Key())
	require.NoError(t, os.Remove(path))
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "api key file unreadable") }, 2*time.Second, 5*time.Millisecond)
	require.Equal(t, "sk-ant-second", src.Key())
	require.NotContains(t, logs.String(), "sk-ant-", "the key is never logged")
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestStaticKeyIsTrimmed(t *testing.T) {
	require.Equal(t, "sk-ant-x", Static(" sk-ant-x\n").Key())
	require.False(t, Static("").Loaded())
}
