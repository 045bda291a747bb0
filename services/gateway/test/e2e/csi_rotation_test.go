package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/services/gateway/internal/testenv"
)

// csiVolume writes a directory the way the kubelet's atomic writer does for Secret volumes,
// and the Secrets Store CSI driver does on every rotation poll: each version of the payload
// goes into a fresh hidden directory named after the time (..2026_12_04_03_05_00.123456789),
// a `..data_tmp` symlink to it is renamed over `..data` (one atomic step), the visible name
// `api-key` is a symlink to `..data/api-key`, and the previous version's directory is
// removed. A reader that resolves `api-key` sees the old file or the new one, never a mix.
type csiVolume struct {
	t   *testing.T
	dir string
}

func newCSIVolume(t *testing.T) *csiVolume {
	dir := filepath.Join(t.TempDir(), "anthropic")
	require.NoError(t, os.Mkdir(dir, 0o755))
	return &csiVolume{t: t, dir: dir}
}

func (v *csiVolume) keyPath() string { return filepath.Join(v.dir, "api-key") }

// publish makes files (name → content) the volume's whole payload.
func (v *csiVolume) publish(files map[string]string) {
	t := v.t
	t.Helper()
	ts, err := os.MkdirTemp(v.dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	require.NoError(t, err)
	for name, content := range files {
		require.NoError(t, os.WriteFile(filepath.Join(ts, name), []byte(content), 0o440))
	}
	require.NoError(t, os.Chmod(ts, 0o755))
	data := filepath.Join(v.dir, "..data")
	old, _ := os.Readlink(data) // "" on the first publish
	tmp := filepath.Join(v.dir, "..data_tmp")
	require.NoError(t, os.Symlink(filepath.Base(ts), tmp))
	require.NoError(t, os.Rename(tmp, data))
	for name := range files {
		link := filepath.Join(v.dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			require.NoError(t, os.Symlink(filepath.Join("..data", name), link))
		}
	}
	// The writer also drops visible names that are no longer in the payload.
	entries, err := os.ReadDir(v.dir)
	require.NoError(t, err)
	for _, e := range entries {
		if _, keep := files[e.Name()]; !keep && !strings.HasPrefix(e.Name(), "..") {
			require.NoError(t, os.Remove(filepath.Join(v.dir, e.Name())))
		}
	}
	if old != "" {
		require.NoError(t, os.RemoveAll(filepath.Join(v.dir, old)))
	}
}

// TestCSIRotationReachesTheNextCallWithoutRestart: the upstream key arrives in a volume laid
// out like a Secrets Store CSI mount. While the file is missing or empty the gateway is not
// ready; each atomic ..data swap is picked up by the running process, and the first upstream
// call after the reload carries the new key (seen by the mock) — twice in a row, so it is the
// watch, not a one-off. No key ever reaches the gateway's log.
func TestCSIRotationReachesTheNextCallWithoutRestart(t *testing.T) {
	mock := testenv.StartMock(t)
	vol := newCSIVolume(t)
	gw := testenv.StartGateway(t, mock.URL, "ANTHROPIC_API_KEY=", "ANTHROPIC_API_KEY_FILE="+vol.keyPath(),
		"KEYWARD_LOG_LEVEL=debug")

	notReady := func(why string) {
		t.Helper()
		code, body := ready(t, gw)
		require.Equal(t, http.StatusServiceUnavailable, code, why)
		require.Contains(t, body, "the Anthropic API key is not loaded", why)
	}
	logCount := func(msg string) int { return strings.Count(gw.Logs(), msg) }

	// The mount is there but the provider has not written the key yet.
	vol.publish(map[string]string{})
	notReady("no key file")

	// The secret manager holds an empty value.
	vol.publish(map[string]string{"api-key": "\n"})
	require.Eventually(t, func() bool { return logCount("api key file is empty") > 0 }, 10*time.Second, 50*time.Millisecond,
		"the gateway says the file is empty")
	notReady("empty key file")

	// Version 1: a key the upstream has already revoked.
	const revoked = "sk-ant-api03-revoked-0000000000000000000000"
	vol.publish(map[string]string{"api-key": revoked + "\n"})
	require.Eventually(t, func() bool { c, _ := ready(t, gw); return c == http.StatusOK }, 10*time.Second, 50*time.Millisecond)
	code, _, b := post(t, gw.URL+"/api/query", nil, query)
	require.Equal(t, http.StatusBadGateway, code, "the upstream refused the revoked key")
	require.NotContains(t, string(b), revoked)
	// Log lines are batched for up to 100 ms, so count loads explicitly: each
	// publish below must add exactly one "loaded" line to those already seen.
	loads := 1
	require.Eventually(t, func() bool { return logCount("api key loaded from file") >= loads }, 10*time.Second, 20*time.Millisecond)

	// rotate swaps in key and returns the x-api-key of the first upstream call made after
	// the gateway logged the reload, and that call's status at the caller.
	rotate := func(key string) (string, int, time.Duration) {
		t.Helper()
		loads++
		start := time.Now()
		vol.publish(map[string]string{"api-key": key + "\n"})
		require.Eventually(t, func() bool { return logCount("api key loaded from file") >= loads }, 10*time.Second, 20*time.Millisecond,
			"the running gateway reloads the swapped file")
		took := time.Since(start)
		before := len(mock.Requests(t))
		code, _, b := post(t, gw.URL+"/api/query", nil, query)
		require.NotContains(t, string(b), key)
		reqs := mock.Requests(t)
		require.Len(t, reqs, before+1, "one upstream call per query")
		got := reqs[len(reqs)-1].Headers["X-Api-Key"]
		require.Len(t, got, 1)
		return got[0], code, took
	}

	// Version 2: the valid key. The very next call uses it and succeeds.
	sent, code, took := rotate(testenv.MockKey)
	require.Equal(t, testenv.MockKey, sent, "the first call after the swap carries the new key")
	require.Equal(t, http.StatusOK, code)
	require.Less(t, took, 5*time.Second, "within the gateway's 2 s file watch")
	t.Logf("figure: rotated key (..data swap) in use after %.1fs", took.Seconds())

	// Version 3: rotated again; the mock sees the newer key on the next call.
	const newer = "sk-ant-api03-newer-1111111111111111111111111"
	sent, code, _ = rotate(newer)
	require.Equal(t, newer, sent)
	require.Equal(t, http.StatusBadGateway, code, "the mock knows only MockKey, so it refuses the newer one")

	// Once a key is loaded, a file that goes empty keeps the last key (a provider hiccup
	// must not take every replica out of service); the gateway warns instead.
	warned := logCount("api key file is empty")
	vol.publish(map[string]string{"api-key": ""})
	require.Eventually(t, func() bool { return logCount("api key file is empty") > warned }, 10*time.Second, 50*time.Millisecond)
	code, _ = ready(t, gw)
	require.Equal(t, http.StatusOK, code, "the last key stays in use")

	gw.Stop() // flush every log line before searching them
	logs := gw.Logs()
	for _, k := range []string{revoked, testenv.MockKey, newer, "sk-ant-api03"} {
		require.NotContains(t, logs, k, "no key, not even a prefix, in the gateway log")
	}
	entries, err := os.ReadDir(vol.dir)
	require.NoError(t, err)
	var versions int
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..20") {
			versions++
		}
	}
	require.Equal(t, 1, versions, "the writer kept only the current version, as the kubelet does")
}
