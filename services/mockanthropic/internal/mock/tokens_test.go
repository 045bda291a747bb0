package mock

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock is an injectable clock for cache expiry.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestPromptCaching(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	s, err := New(Options{APIKey: testKey, Now: clock.now})
	require.NoError(t, err)

	sys := strings.Repeat("s", 4000) // 1000 tokens
	doc := strings.Repeat("d", 8000) // 2000 tokens
	req := func(question, sysTTL, docTTL string) string {
		cc := func(ttl string) string {
			if ttl == "" {
				return `{"type":"ephemeral"}`
			}
			return `{"type":"ephemeral","ttl":"` + ttl + `"}`
		}
		return `{"model":"claude-sonnet-4-5","max_tokens":100,` +
			`"system":[{"type":"text","text":"` + sys + `","cache_control":` + cc(sysTTL) + `}],` +
			`"messages":[{"role":"user","content":[{"type":"text","text":"` + doc + `","cache_control":` + cc(docTTL) + `},` +
			`{"type":"text","text":"` + question + `"}]}]}`
	}
	call := func(b string) usageBody {
		return decodeMessage(t, serve(s, apiRequest(t, http.MethodPost, "/v1/messages", b))).Usage
	}

	// First sight: both prefixes are written, the 1h system prefix and the 5m document.
	u := call(req("What changed? (12 b)", "1h", ""))
	require.EqualValues(t, 3000, u.CacheCreationInputTokens)
	require.EqualValues(t, 1000, u.CacheCreation.Ephemeral1h)
	require.EqualValues(t, 2000, u.CacheCreation.Ephemeral5m)
	require.Zero(t, u.CacheReadInputTokens)
	require.EqualValues(t, 5, u.InputTokens, "only the text after the last breakpoint is uncached input")

	// Same prefix, different question: a pure cache read.
	u = call(req("Another question here", "1h", ""))
	require.EqualValues(t, 3000, u.CacheReadInputTokens)
	require.Zero(t, u.CacheCreationInputTokens)
	require.EqualValues(t, 6, u.InputTokens)

	// count_tokens reports the whole prompt and does not touch the cache.
	rec := serve(s, apiRequest(t, http.MethodPost, "/v1/messages/count_tokens", req("Another question here", "1h", "")))
	require.JSONEq(t, `{"input_tokens":3006}`, rec.Body.String())

	// After 10 minutes the 5m document entry is gone but the 1h system entry is not.
	clock.advance(10 * time.Minute)
	u = call(req("Another question here", "1h", ""))
	require.EqualValues(t, 1000, u.CacheReadInputTokens)
	require.EqualValues(t, 2000, u.CacheCreation.Ephemeral5m)
	require.Zero(t, u.CacheCreation.Ephemeral1h)

	// A read refreshes the TTL: 4 minutes later, and 4 more, the document is still cached.
	clock.advance(4 * time.Minute)
	require.EqualValues(t, 3000, call(req("q", "1h", "")).CacheReadInputTokens)
	clock.advance(4 * time.Minute)
	require.EqualValues(t, 3000, call(req("q", "1h", "")).CacheReadInputTokens)

	// Caches are per model.
	other := strings.Replace(req("q", "1h", ""), "claude-sonnet-4-5", "claude-opus-4-8", 1)
	u = call(other)
	require.Zero(t, u.CacheReadInputTokens)
	require.EqualValues(t, 3000, u.CacheCreationInputTokens)

	// A changed prefix is a new entry; reset forgets everything.
	u = call(strings.Replace(req("q", "1h", ""), `"text":"s`, `"text":"S`, 1))
	require.Zero(t, u.CacheReadInputTokens)
	resp := serve(s, httptestRequest(http.MethodPost, "/_mock/reset", ""))
	require.Equal(t, 200, resp.Code)
	require.Zero(t, call(req("q", "1h", "")).CacheReadInputTokens)
}

func TestAutomaticCachingAndTools(t *testing.T) {
	s, err := New(Options{APIKey: testKey})
	require.NoError(t, err)
	tools := `"tools":[{"name":"lookup","description":"` + strings.Repeat("x", 400) + `","input_schema":{"type":"object"},"cache_control":{"type":"ephemeral"}}]`
	b := `{"model":"claude-sonnet-4-5","max_tokens":100,"cache_control":{"type":"ephemeral"},` + tools +
		`,"messages":[{"role":"user","content":"` + strings.Repeat("q", 40) + `"}]}`
	first := decodeMessage(t, serve(s, apiRequest(t, http.MethodPost, "/v1/messages", b))).Usage
	toolTokens := int64(len(`{"name":"lookup","description":"`+strings.Repeat("x", 400)+`","input_schema":{"type":"object"},"cache_control":{"type":"ephemeral"}}`)+3) / 4
	require.EqualValues(t, toolTokens+10, first.CacheCreationInputTokens, "top-level cache_control caches the whole prompt")
	require.Zero(t, first.InputTokens)
	second := decodeMessage(t, serve(s, apiRequest(t, http.MethodPost, "/v1/messages", b))).Usage
	require.Equal(t, first.CacheCreationInputTokens, second.CacheReadInputTokens)
}

func TestPromptCacheBounded(t *testing.T) {
	c := newPromptCache()
	now := time.Now()
	for i := range maxCacheEntries + 10 {
		c.bill(100, []breakpoint{{hash: uint64(i), bytes: 40, ttl: time.Hour}}, -1, now)
	}
	require.LessOrEqual(t, len(c.entries), maxCacheEntries)
}

func httptestRequest(method, path, b string) *http.Request {
	r, _ := http.NewRequest(method, path, strings.NewReader(b))
	return r
}
