package mock

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Stop reasons the mock produces.
const (
	stopEndTurn  = "end_turn"
	stopMaxToken = "max_tokens"
	stopSequence = "stop_sequence"
	stopToolUse  = "tool_use"
)

// maxQuoteBytes bounds how much of the last user message the answer quotes.
const maxQuoteBytes = 300

// filler pads answers to the length an output_tokens directive asks for.
const filler = " The mock keeps writing so that the answer reaches the requested length."

// answer is the assistant's reply to one call.
type answer struct {
	text         string
	stopReason   string
	stopSequence string // set when stopReason is stop_sequence
	outputTokens int64
}

// buildAnswer writes a deterministic reply that shows what arrived: the model, the system
// prompt's length, the number of messages and a quote of the last user message. The same
// request always gets the same answer. budget is how many output tokens are left for it
// (max_tokens less what thinking and tool calls used).
func buildAnswer(r *messagesRequest, d *Directives, budget int64) answer {
	quote := r.lastUserText()
	truncated := false
	if len(quote) > maxQuoteBytes {
		quote, truncated = cutRunes(quote, maxQuoteBytes), true
	}
	var b strings.Builder
	want := 0
	if d.OutputTokens > 0 {
		want = d.OutputTokens * 4
	}
	b.Grow(max(128+len(quote), want))
	b.WriteString("Mock answer from ")
	b.WriteString(*r.Model)
	b.WriteString(". System prompt: ")
	b.WriteString(strconv.Itoa(r.systemChars()))
	b.WriteString(" characters. Messages: ")
	b.WriteString(strconv.Itoa(len(r.Messages)))
	b.WriteString(`. You said: "`)
	b.WriteString(quote)
	if truncated {
		b.WriteString("…")
	}
	b.WriteString(`"`)
	text := b.String()
	if want > 0 {
		text = padTo(text, want)
	}

	a := answer{text: text, stopReason: stopEndTurn}
	limit := len(text)
	if budget < int64(len(text)+3)/4 {
		limit = int(budget) * 4
	}
	// A stop sequence ends the answer only if it would be produced before max_tokens runs out.
	best := -1
	for _, seq := range r.StopSequences {
		if seq == "" {
			continue
		}
		if i := strings.Index(text, seq); i >= 0 && i+len(seq) <= limit && (best < 0 || i < best) {
			best, a.stopSequence = i, seq
		}
	}
	switch {
	case best >= 0:
		a.text, a.stopReason = text[:best], stopSequence
	case limit < len(text):
		a.text, a.stopReason = cutRunes(text, limit), stopMaxToken
		a.outputTokens = budget
		return a
	}
	a.outputTokens = max(1, tokensFor(len(a.text)))
	return a
}

// padTo returns text cut or padded to exactly n bytes, so the answer is exactly n/4 tokens.
func padTo(text string, n int) string {
	if len(text) >= n {
		text = cutRunes(text, n)
		return text + strings.Repeat(".", n-len(text))
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(text)
	for b.Len() < n {
		b.WriteString(filler[:min(len(filler), n-b.Len())])
	}
	return b.String()
}

// cutRunes returns the longest prefix of s that is at most n bytes and ends on a rune boundary.
func cutRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
