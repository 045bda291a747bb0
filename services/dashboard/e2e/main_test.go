package e2e

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/keyward/keyward/services/gateway/test/stacktest"
)

var (
	buildDir  string
	buildOnce sync.Once
	builtBins map[string]string
	buildErr  error
)

// binaries builds the gateway, mock and dashboard once for the whole
// package (linking is the slow part), on first use, into a directory
// TestMain removes afterwards.
func binaries(t *testing.T) map[string]string {
	t.Helper()
	buildOnce.Do(func() {
		builtBins, buildErr = stacktest.BuildBinaries(buildDir, stacktest.GatewayPkg, stacktest.MockPkg, stacktest.DashboardPkg)
	})
	if buildErr != nil {
		t.Fatalf("building the binaries: %v", buildErr)
	}
	return builtBins
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keyward-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating the binaries' directory:", err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
