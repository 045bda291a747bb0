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

// TestKeyFileRotationNeedsNoRestart: with ANTHROPIC_API_KEY_FILE the gateway
// is not ready until the file exists, and picks up a rotated key while
// running; an upstream rejecting the key is a 502 that never shows the key.
func TestKeyFileRotationNeedsNoRestart(t *testing.T) {
	mock := testenv.StartMock(t)
	keyFile := filepath.Join(t.TempDir(), "api-key")
	gw := testenv.StartGateway(t, mock.URL, "ANTHROPIC_API_KEY=", "ANTHROPIC_API_KEY_FILE="+keyFile)

	code, _ := ready(t, gw)
	require.Equal(t, http.StatusServiceUnavailable, code, "no key file yet: not ready")

	const stale = "sk-ant-stale-key-0000000000000000"
	require.NoError(t, os.WriteFile(keyFile, []byte(stale+"\n"), 0o600))
	require.Eventually(t, func() bool { c, _ := ready(t, gw); return c == http.StatusOK }, 5*time.Second, 50*time.Millisecond)
	code, _, b := post(t, gw.URL+"/api/query", nil, query)
	require.Equal(t, http.StatusBadGateway, code, "the upstream refused our key")
	require.NotContains(t, string(b), stale)

	tmp := keyFile + ".new"
	require.NoError(t, os.WriteFile(tmp, []byte(testenv.MockKey), 0o600))
	require.NoError(t, os.Rename(tmp, keyFile))
	rotated := time.Now()
	require.Eventually(t, func() bool {
		c, _, _ := post(t, gw.URL+"/api/query", nil, query)
		return c == http.StatusOK
	}, 10*time.Second, 100*time.Millisecond, "the rotated key is used without a restart")
	t.Logf("figure: rotated key in use after %.1fs", time.Since(rotated).Seconds())
	gw.Stop() // flush every log line before searching them
	require.False(t, strings.Contains(gw.Logs(), stale) || strings.Contains(gw.Logs(), testenv.MockKey), "keys never logged")
}
