package auth

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/keyward/keyward/pkg/redistest"
)

// TestMain starts one real redis-server for the examples that show the
// Redis nonce store (they read KEYWARD_REDIS_URL, as a deployment would),
// and checks that every JWKS refresher, HTTP connection and Redis pool
// started by a test is gone when the tests end: Close has to really stop
// things.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	rds, err := redistest.StartMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	os.Setenv("KEYWARD_REDIS_URL", rds.URL())
	code := m.Run()
	rds.Stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}
