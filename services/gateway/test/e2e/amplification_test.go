package e2e

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/services/gateway/internal/testenv"
)

// One SDK call against an upstream that always answers 529, with the SDK's
// default retries (2): the gateway passes each 529 back with retry-after and
// x-should-retry instead of retrying itself, so the upstream sees exactly
// the SDK's 3 attempts, not 3 × 3.
func TestNoRetryAmplificationWithTheOfficialSDK(t *testing.T) {
	mock := testenv.StartMock(t)
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_UPSTREAM_BREAKER_THRESHOLD=100")
	mock.MockPost(t, "/_mock/reset", `{}`)
	mock.MockPost(t, "/_mock/config", `{"status":529}`)
	client := sdk(gw.URL, "sk-ant-anything")

	_, err := client.Messages.New(context.Background(), ask("overloaded"))
	var apiErr *anthropic.Error
	require.True(t, errors.As(err, &apiErr), "%T %v", err, err)
	require.Equal(t, 529, apiErr.StatusCode)
	require.EqualValues(t, "overloaded_error", apiErr.Type())
	require.NotEmpty(t, apiErr.RequestID, "the upstream's request-id reaches err.RequestID")

	byPath := mock.Stats(t)["by_path"].(map[string]any)
	require.EqualValues(t, 3, byPath["/v1/messages"], "the SDK's own 3 attempts and no more")
	require.Equal(t, http.StatusOK, func() int {
		code, _, _ := testenv.Do(t, http.MethodGet, gw.URL+"/health", nil, "")
		return code
	}())
}
