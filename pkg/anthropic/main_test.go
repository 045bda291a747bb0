package anthropic

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test, example and benchmark must leave no goroutine behind: the
// client's attempt contexts, timers and connections all have to be released.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
