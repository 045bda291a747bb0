package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/anthropic"
)

func TestThinkingBudget(t *testing.T) {
	for _, tt := range []struct {
		raw  string
		want int64
	}{
		{``, 0},
		{`{"type":"disabled"}`, 0},
		{`{"type":"enabled","budget_tokens":2048}`, 2048},
		{`{"type":"enabled","budget_tokens":90000}`, 8000}, // never above max_tokens
		{`{"type":"enabled","budget_tokens":-5}`, 0},
		{`{"type":"adaptive"}`, 8000}, // no budget of its own: up to max_tokens
		{`{"type":"adaptive","display":"omitted"}`, 8000},
		{`{"type":"enabled","budget_tokens":"lots"}`, 8000}, // unreadable: the most it could be
	} {
		require.Equal(t, tt.want, thinkingBudget(json.RawMessage(tt.raw), 8000), tt.raw)
	}
}

// A failed upstream call is billed only when the request went out and no
// answer came back.
func TestMayBeBilled(t *testing.T) {
	require.True(t, mayBeBilled(fmt.Errorf("calling upstream: %w", anthropic.ErrUpstreamTimeout)))
	require.True(t, mayBeBilled(fmt.Errorf("calling upstream: %w", context.Canceled)))
	require.True(t, mayBeBilled(context.DeadlineExceeded))
	require.False(t, mayBeBilled(&anthropic.APIError{Status: 529, Type: "overloaded_error"}))
	require.False(t, mayBeBilled(fmt.Errorf("calling upstream: %w: dial tcp: refused", anthropic.ErrUpstreamConnection)))
	require.False(t, mayBeBilled(anthropic.ErrCircuitOpen))
}

func TestEndMessageBudget(t *testing.T) {
	typ, msg := endMessage(endBudget)
	require.Equal(t, "budget_exceeded", typ)
	require.Contains(t, msg, "budget")
	var e struct {
		Type  string `json:"type"`
		Error struct {
			Type string `json:"type"`
		} `json:"error"`
	}
	ev := errorEvent(typ, msg)
	require.Contains(t, string(ev), "event: error\ndata: ")
	data := ev[len("event: error\ndata: ") : len(ev)-2]
	require.NoError(t, json.Unmarshal(data, &e))
	require.Equal(t, "error", e.Type)
	require.Equal(t, "budget_exceeded", e.Error.Type)
}
