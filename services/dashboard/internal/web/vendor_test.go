package web

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// vendored maps each embedded library file to its file in the npm package.
var vendored = map[string]string{
	"chart.umd.min.js":    "node_modules/chart.js/dist/chart.umd.min.js",
	"chart.js.LICENSE.md": "node_modules/chart.js/LICENSE.md",
}

// TestVendoredFileIsThePinnedVersion: the committed chart.js is the version
// package-lock.json pins (its banner names it).
func TestVendoredFileIsThePinnedVersion(t *testing.T) {
	lock, err := os.ReadFile("../../web/package-lock.json")
	require.NoError(t, err)
	var l struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	require.NoError(t, json.Unmarshal(lock, &l))
	v := l.Packages["node_modules/chart.js"].Version
	require.Equal(t, "4.6.1", v)
	js, err := fs.ReadFile(FS(), "chart.umd.min.js")
	require.NoError(t, err)
	require.True(t, bytes.Contains(js[:200], []byte("Chart.js v"+v)), "the embedded chart.js is v%s", v)
}

// TestVendoredFilesMatchTheLockfile installs package-lock.json afresh (npm
// ci, integrity-checked against the lockfile's hashes) and compares the
// committed copies byte for byte, so the embedded library is exactly the
// pinned package's file.
func TestVendoredFilesMatchTheLockfile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs npm ci")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("npm is not installed (scripts/deps.sh installs it)")
	}
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join("../../web", f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o600))
	}
	cmd := exec.Command(npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "npm ci: %s", out)
	for embedded, pkgFile := range vendored {
		want, err := os.ReadFile(filepath.Join(dir, pkgFile))
		require.NoError(t, err)
		got, err := fs.ReadFile(FS(), embedded)
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got), "%s differs from %s of the pinned package: run services/dashboard/web/vendor.sh", embedded, pkgFile)
	}
}
