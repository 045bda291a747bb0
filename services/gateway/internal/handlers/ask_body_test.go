package handlers

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// The upstream body of /api/query is byte-for-byte what encoding the old
// map gave — HTML escaping of the caller's text included, which keeps a
// "</context>" in a question from reading as the delimiter.
func TestAskRequestEncodesLikeTheMap(t *testing.T) {
	for _, content := range []string{"plain", "<context>\n{\"a\":1}\n</context>\n\nQuestion: a & b?", "émoji 🚀 \u2028"} {
		for _, stream := range []bool{false, true} {
			want, err := json.Marshal(map[string]any{
				"model": "claude-sonnet-4-5", "max_tokens": int64(1024), "system": "be <careful>",
				"messages": []map[string]string{{"role": "user", "content": content}}, "stream": stream,
			})
			require.NoError(t, err)
			got, err := json.Marshal(askRequest{MaxTokens: 1024, Messages: []askMessage{{Content: content, Role: "user"}},
				Model: "claude-sonnet-4-5", Stream: stream, System: "be <careful>"})
			require.NoError(t, err)
			require.Equal(t, string(want), string(got))
		}
	}
}
