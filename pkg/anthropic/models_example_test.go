package anthropic_test

import (
	"fmt"

	"github.com/keyward/keyward/pkg/anthropic"
)

// The model table gives each model's context window and maximum output; a
// dated id finds its undated row.
func ExampleModelTable_Lookup() {
	m, ok := anthropic.DefaultModelTable().Lookup("claude-sonnet-4-5-20250929")
	fmt.Println(ok, m.ID, m.MaxInputTokens, m.MaxTokens)
	// Output: true claude-sonnet-4-5 200000 64000
}

// A caller that retries by itself (an SDK) asks Do to retry only what never
// reached the upstream, so the two retry loops do not multiply.
func ExampleRetryPolicy() {
	call := anthropic.Call{Path: "/v1/messages", Body: []byte(`{}`), Retry: anthropic.RetryUnsent}
	fmt.Println(call.Retry == anthropic.RetryUnsent, anthropic.RetryAll == anthropic.RetryPolicy(0))
	// Output: true true
}
