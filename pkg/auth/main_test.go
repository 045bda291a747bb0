package auth

import (
	"testing"

	"go.uber.org/goleak"
)

// Every JWKS refresher, HTTP connection and Redis pool started by a test
// must be gone when the tests end: Close has to really stop things.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
