package anthropic

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseAPIErrorKeepsTheUpstreamsShouldRetry(t *testing.T) {
	body := []byte(anthropicErr("overloaded_error", "Overloaded"))
	for in, want := range map[string]string{"False": "false", " true ": "true", "": "", "maybe": ""} {
		h := http.Header{}
		if in != "" {
			h.Set("x-should-retry", in)
		}
		require.Equal(t, want, parseAPIError(529, h, body, 0, "").ShouldRetry, "%q", in)
	}
}
