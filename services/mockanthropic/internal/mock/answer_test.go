package mock

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestAnswer(t *testing.T) {
	s, err := New(Options{APIKey: testKey})
	require.NoError(t, err)
	ask := func(b string) messageBody {
		return decodeMessage(t, serve(s, apiRequest(t, http.MethodPost, "/v1/messages", b)))
	}

	t.Run("long quote is cut on a rune boundary", func(t *testing.T) {
		long := strings.Repeat("é", 400) // 800 bytes
		m := ask(body(long))
		text := m.Content[0].Text
		require.True(t, utf8.ValidString(text))
		require.Contains(t, text, strings.Repeat("é", 150)+`…"`)
		require.NotContains(t, text, strings.Repeat("é", 151))
	})
	t.Run("output_tokens sets the exact length", func(t *testing.T) {
		for _, n := range []int{1, 7, 300, 5000} {
			m := ask(body("[[mock:output_tokens="+strconv.Itoa(n)+"]] hi", `"max_tokens":8000`))
			require.EqualValues(t, n, m.Usage.OutputTokens)
			require.Len(t, m.Content[0].Text, 4*n)
			require.Equal(t, "end_turn", m.StopReason)
		}
	})
	t.Run("max_tokens cuts the answer", func(t *testing.T) {
		m := ask(`{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"[[mock:output_tokens=300]]"}]}`)
		require.Equal(t, "max_tokens", m.StopReason)
		require.EqualValues(t, 5, m.Usage.OutputTokens)
		require.Len(t, m.Content[0].Text, 20)
	})
	t.Run("stop sequence", func(t *testing.T) {
		m := ask(body("abc", `"stop_sequences":["zzz","You said"]`))
		require.Equal(t, "stop_sequence", m.StopReason)
		require.Equal(t, "You said", *m.StopSequence)
		require.True(t, strings.HasSuffix(m.Content[0].Text, "Messages: 1. "), m.Content[0].Text)
	})
	t.Run("stop sequence beyond max_tokens does not stop", func(t *testing.T) {
		m := ask(`{"model":"claude-sonnet-4-5","max_tokens":2,"stop_sequences":["You said"],"messages":[{"role":"user","content":"x"}]}`)
		require.Equal(t, "max_tokens", m.StopReason)
	})
	t.Run("prompt text is escaped, not injected", func(t *testing.T) {
		m := ask(body("quote \" backslash \\ newline \n tab \t ctrl \x01 </script>"))
		require.Contains(t, m.Content[0].Text, "quote \" backslash \\ newline \n tab \t ctrl \x01 </script>")
	})
}

func TestCutRunesAndPad(t *testing.T) {
	require.Equal(t, "ab", cutRunes("abé", 3))
	require.Equal(t, "abé", cutRunes("abé", 4))
	require.Equal(t, "", cutRunes("é", 1))
	require.Equal(t, "ab.", padTo("abé", 3))
	require.Len(t, padTo("short", 1000), 1000)
}
