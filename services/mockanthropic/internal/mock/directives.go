package mock

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Directives is a plan of faults and latency for one call. The same fields come from three
// places, merged field by field with the later one winning: the configured defaults (flags,
// environment, POST /_mock/config), the next entry of the fault queue (POST /_mock/faults)
// and [[mock:…]] directives in the text of the last user message. See the package
// documentation for what each field does.
type Directives struct {
	Status       int    `json:"status,omitempty"`
	ErrorType    string `json:"error_type,omitempty"`
	Message      string `json:"message,omitempty"`
	RetryAfter   *int   `json:"retry_after,omitempty"`
	RetryAfterMs *int   `json:"retry_after_ms,omitempty"`
	ShouldRetry  *bool  `json:"should_retry,omitempty"`
	SpendLimit   bool   `json:"spend_limit,omitempty"`
	FirstByteMs  int    `json:"first_byte_ms,omitempty"`
	EventDelayMs int    `json:"event_delay_ms,omitempty"`
	ErrorAfter   *int   `json:"error_after,omitempty"`
	DropAfter    *int   `json:"drop_after,omitempty"`
	UsageDeltas  int    `json:"usage_deltas,omitempty"`
	OutputTokens int    `json:"output_tokens,omitempty"`
	EchoKey      bool   `json:"echo_key,omitempty"`
	Hang         bool   `json:"hang,omitempty"`

	// What "the model" does beyond text (see the package documentation).
	ThinkingTokens     *int   `json:"thinking_tokens,omitempty"`
	RedactedThinking   bool   `json:"redacted_thinking,omitempty"`
	ToolUse            string `json:"tool_use,omitempty"`
	WebSearch          int    `json:"web_search,omitempty"`
	SearchResultTokens *int   `json:"search_result_tokens,omitempty"`
	WebFetch           int    `json:"web_fetch,omitempty"`
	FetchTokens        *int   `json:"fetch_tokens,omitempty"`
	Iterations         int    `json:"iterations,omitempty"`

	// Input the body does not show.
	DocPages          *int   `json:"doc_pages,omitempty"`
	DocPageTokens     *int   `json:"doc_page_tokens,omitempty"`
	ImageSize         string `json:"image_size,omitempty"`
	InputTokens       *int   `json:"input_tokens,omitempty"`
	ServerInputTokens *int   `json:"server_input_tokens,omitempty"`

	// A hostile upstream.
	LongLine       int  `json:"long_line,omitempty"`
	EchoKeyHeaders bool `json:"echo_key_headers,omitempty"`
	EchoKeyFields  bool `json:"echo_key_fields,omitempty"`
}

// Bounds keep a typo in a test from turning into an hour-long sleep or a gigabyte answer.
const (
	maxDelayMs      = 600_000
	maxRetryAfter   = 86_400
	maxEventCount   = 1_000_000
	maxUsageDeltas  = 1_000
	maxOutputTokens = 1_000_000
	maxMessageLen   = 2_000
	maxTokenCount   = 10_000_000 // thinking, search, fetch, page and forced input counts
	maxServerCalls  = 100        // web_search, web_fetch
	maxIterations   = 100
	maxDocPages     = 100_000
	maxImageSide    = 100_000
	minLongLine     = 64
	maxLongLine     = 512 << 20
	maxToolName     = 128
)

// Defaults for the billing directives a call leaves unset.
const (
	defaultSearchResultTokens = 2_000
	defaultFetchTokens        = 3_000
	defaultDocPages           = 10
	defaultDocPageTokens      = 3_000
	defaultImageSide          = 1_092
	defaultServerInputTokens  = 2_000
)

// directiveMarker opens a directive inside prompt text.
const directiveMarker = "[[mock:"

// Validate reports the first field that is out of range.
func (d *Directives) Validate() error {
	switch {
	case d.Status != 0 && d.Status != http.StatusOK && (d.Status < 400 || d.Status > 599):
		return fmt.Errorf("status %d: must be 200 or 400-599", d.Status)
	case len(d.ErrorType) > 64 || !isSnakeWord(d.ErrorType):
		return fmt.Errorf("error_type %q: must be lower_snake_case, at most 64 bytes", d.ErrorType)
	case len(d.Message) > maxMessageLen:
		return fmt.Errorf("message: longer than %d bytes", maxMessageLen)
	case outside(d.RetryAfter, maxRetryAfter):
		return fmt.Errorf("retry_after %d: must be 0-%d seconds", *d.RetryAfter, maxRetryAfter)
	case outside(d.RetryAfterMs, maxRetryAfter*1000):
		return fmt.Errorf("retry_after_ms %d: must be 0-%d", *d.RetryAfterMs, maxRetryAfter*1000)
	case d.FirstByteMs < 0 || d.FirstByteMs > maxDelayMs:
		return fmt.Errorf("first_byte_ms %d: must be 0-%d", d.FirstByteMs, maxDelayMs)
	case d.EventDelayMs < 0 || d.EventDelayMs > maxDelayMs:
		return fmt.Errorf("event_delay_ms %d: must be 0-%d", d.EventDelayMs, maxDelayMs)
	case outside(d.ErrorAfter, maxEventCount):
		return fmt.Errorf("error_after %d: must be 0-%d", *d.ErrorAfter, maxEventCount)
	case outside(d.DropAfter, maxEventCount):
		return fmt.Errorf("drop_after %d: must be 0-%d", *d.DropAfter, maxEventCount)
	case d.UsageDeltas < 0 || d.UsageDeltas > maxUsageDeltas:
		return fmt.Errorf("usage_deltas %d: must be 1-%d", d.UsageDeltas, maxUsageDeltas)
	case d.OutputTokens < 0 || d.OutputTokens > maxOutputTokens:
		return fmt.Errorf("output_tokens %d: must be 1-%d", d.OutputTokens, maxOutputTokens)
	case outside(d.ThinkingTokens, maxTokenCount):
		return fmt.Errorf("thinking_tokens %d: must be 0-%d", *d.ThinkingTokens, maxTokenCount)
	case len(d.ToolUse) > maxToolName || !isToolName(d.ToolUse):
		return fmt.Errorf("tool_use %q: must be a tool name (letters, digits, _ and -, at most %d bytes)", d.ToolUse, maxToolName)
	case d.WebSearch < 0 || d.WebSearch > maxServerCalls:
		return fmt.Errorf("web_search %d: must be 0-%d", d.WebSearch, maxServerCalls)
	case outside(d.SearchResultTokens, maxTokenCount):
		return fmt.Errorf("search_result_tokens %d: must be 0-%d", *d.SearchResultTokens, maxTokenCount)
	case d.WebFetch < 0 || d.WebFetch > maxServerCalls:
		return fmt.Errorf("web_fetch %d: must be 0-%d", d.WebFetch, maxServerCalls)
	case outside(d.FetchTokens, maxTokenCount):
		return fmt.Errorf("fetch_tokens %d: must be 0-%d", *d.FetchTokens, maxTokenCount)
	case d.Iterations < 0 || d.Iterations > maxIterations:
		return fmt.Errorf("iterations %d: must be 1-%d", d.Iterations, maxIterations)
	case outside(d.DocPages, maxDocPages):
		return fmt.Errorf("doc_pages %d: must be 0-%d", *d.DocPages, maxDocPages)
	case outside(d.DocPageTokens, maxTokenCount):
		return fmt.Errorf("doc_page_tokens %d: must be 0-%d", *d.DocPageTokens, maxTokenCount)
	case outside(d.InputTokens, maxTokenCount):
		return fmt.Errorf("input_tokens %d: must be 0-%d", *d.InputTokens, maxTokenCount)
	case outside(d.ServerInputTokens, maxTokenCount):
		return fmt.Errorf("server_input_tokens %d: must be 0-%d", *d.ServerInputTokens, maxTokenCount)
	case d.LongLine != 0 && (d.LongLine < minLongLine || d.LongLine > maxLongLine):
		return fmt.Errorf("long_line %d: must be %d-%d bytes", d.LongLine, minLongLine, maxLongLine)
	}
	if d.ImageSize != "" {
		if _, _, err := parseImageSize(d.ImageSize); err != nil {
			return err
		}
	}
	return nil
}

// parseImageSize reads an image_size value, "WxH" in pixels.
func parseImageSize(s string) (w, h int, err error) {
	ws, hs, ok := strings.Cut(s, "x")
	if ok {
		w, err = strconv.Atoi(ws)
		if err == nil {
			h, err = strconv.Atoi(hs)
		}
	}
	if !ok || err != nil || w < 1 || h < 1 || w > maxImageSide || h > maxImageSide {
		return 0, 0, fmt.Errorf("image_size %q: want WIDTHxHEIGHT in pixels, each 1-%d, e.g. 1092x1092", s, maxImageSide)
	}
	return w, h, nil
}

// imageSize is the size billed for an image the API fetches itself (by URL or file id).
func (d *Directives) imageSize() (w, h int) {
	if d.ImageSize == "" {
		return defaultImageSide, defaultImageSide
	}
	if w, h, err := parseImageSize(d.ImageSize); err == nil {
		return w, h
	}
	return defaultImageSide, defaultImageSide
}

// orDefault returns *v, or def when v is unset.
func orDefault(v *int, def int) int64 {
	if v == nil {
		return int64(def)
	}
	return int64(*v)
}

func isToolName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func outside(v *int, hi int) bool { return v != nil && (*v < 0 || *v > hi) }

func isSnakeWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// merge returns d with every field that over sets replaced by over's value.
func (d Directives) merge(over *Directives) Directives {
	if over.Status != 0 {
		d.Status = over.Status
	}
	if over.ErrorType != "" {
		d.ErrorType = over.ErrorType
	}
	if over.Message != "" {
		d.Message = over.Message
	}
	if over.RetryAfter != nil {
		d.RetryAfter = over.RetryAfter
	}
	if over.RetryAfterMs != nil {
		d.RetryAfterMs = over.RetryAfterMs
	}
	if over.ShouldRetry != nil {
		d.ShouldRetry = over.ShouldRetry
	}
	d.SpendLimit = d.SpendLimit || over.SpendLimit
	if over.FirstByteMs != 0 {
		d.FirstByteMs = over.FirstByteMs
	}
	if over.EventDelayMs != 0 {
		d.EventDelayMs = over.EventDelayMs
	}
	if over.ErrorAfter != nil {
		d.ErrorAfter = over.ErrorAfter
	}
	if over.DropAfter != nil {
		d.DropAfter = over.DropAfter
	}
	if over.UsageDeltas != 0 {
		d.UsageDeltas = over.UsageDeltas
	}
	if over.OutputTokens != 0 {
		d.OutputTokens = over.OutputTokens
	}
	d.EchoKey = d.EchoKey || over.EchoKey
	d.Hang = d.Hang || over.Hang
	pick(&d.ThinkingTokens, over.ThinkingTokens)
	d.RedactedThinking = d.RedactedThinking || over.RedactedThinking
	if over.ToolUse != "" {
		d.ToolUse = over.ToolUse
	}
	if over.WebSearch != 0 {
		d.WebSearch = over.WebSearch
	}
	pick(&d.SearchResultTokens, over.SearchResultTokens)
	if over.WebFetch != 0 {
		d.WebFetch = over.WebFetch
	}
	pick(&d.FetchTokens, over.FetchTokens)
	if over.Iterations != 0 {
		d.Iterations = over.Iterations
	}
	pick(&d.DocPages, over.DocPages)
	pick(&d.DocPageTokens, over.DocPageTokens)
	if over.ImageSize != "" {
		d.ImageSize = over.ImageSize
	}
	pick(&d.InputTokens, over.InputTokens)
	pick(&d.ServerInputTokens, over.ServerInputTokens)
	if over.LongLine != 0 {
		d.LongLine = over.LongLine
	}
	d.EchoKeyHeaders = d.EchoKeyHeaders || over.EchoKeyHeaders
	d.EchoKeyFields = d.EchoKeyFields || over.EchoKeyFields
	return d
}

func pick(dst **int, over *int) {
	if over != nil {
		*dst = over
	}
}

// fault returns the error response d asks for, or nil when the call should succeed.
func (d *Directives) fault() *apiError {
	if d.SpendLimit {
		// The tier spend cap: a 429 that no amount of waiting fixes, so the real API sends no
		// retry-after and names the cause in error.details instead.
		e := newAPIError(http.StatusTooManyRequests, errRateLimit,
			"You have reached your organization's monthly usage limit. Raise it in the Console to continue.")
		e.errorCode = "enforced_spend_limit_reached"
		e.shouldRetry = d.ShouldRetry
		if d.Message != "" {
			e.message = d.Message
		}
		return e
	}
	if d.Status == 0 || d.Status == http.StatusOK {
		return nil
	}
	errType := d.ErrorType
	if errType == "" {
		errType = defaultErrorType(d.Status)
	}
	msg := d.Message
	if msg == "" {
		msg = defaultErrorMessage(d.Status, errType)
	}
	e := newAPIError(d.Status, errType, msg)
	e.retryAfter = d.RetryAfter
	e.retryAfterMs = d.RetryAfterMs
	e.shouldRetry = d.ShouldRetry
	return e
}

var errUnterminated = errors.New("unterminated " + directiveMarker + " directive: missing ]]")

// parseDirectives reads every [[mock:…]] block in text. Callers check for directiveMarker
// first, so prompts without directives never pay for this.
func parseDirectives(text string) (Directives, error) {
	var d Directives
	for {
		i := strings.Index(text, directiveMarker)
		if i < 0 {
			return d, d.Validate()
		}
		text = text[i+len(directiveMarker):]
		end := strings.Index(text, "]]")
		if end < 0 {
			return d, errUnterminated
		}
		for _, item := range strings.Fields(text[:end]) {
			if err := d.set(item); err != nil {
				return d, err
			}
		}
		text = text[end+2:]
	}
}

// set applies one key[=value] item of a directive.
func (d *Directives) set(item string) error {
	key, value, hasValue := strings.Cut(item, "=")
	flag := func(dst *bool) error {
		if !hasValue {
			*dst = true
			return nil
		}
		b, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("%s=%q: want true or false", key, value)
		}
		*dst = b
		return nil
	}
	number := func(dst *int) error {
		if !hasValue {
			return fmt.Errorf("%s: needs a value, e.g. %s=3", key, key)
		}
		n, err := strconv.Atoi(value)
		if err != nil {
			return fmt.Errorf("%s=%q: want a whole number", key, value)
		}
		*dst = n
		return nil
	}
	optNumber := func(dst **int) error {
		var n int
		if err := number(&n); err != nil {
			return err
		}
		*dst = &n
		return nil
	}
	switch key {
	case "status":
		return number(&d.Status)
	case "error_type":
		if !hasValue || value == "" {
			return errors.New("error_type: needs a value, e.g. error_type=api_error")
		}
		d.ErrorType = value
		return nil
	case "retry_after":
		return optNumber(&d.RetryAfter)
	case "retry_after_ms":
		return optNumber(&d.RetryAfterMs)
	case "should_retry":
		var b bool
		if err := flag(&b); err != nil {
			return err
		}
		d.ShouldRetry = &b
		return nil
	case "spend_limit":
		return flag(&d.SpendLimit)
	case "first_byte_ms":
		return number(&d.FirstByteMs)
	case "event_delay_ms":
		return number(&d.EventDelayMs)
	case "error_after":
		return optNumber(&d.ErrorAfter)
	case "drop_after":
		return optNumber(&d.DropAfter)
	case "usage_deltas":
		return number(&d.UsageDeltas)
	case "output_tokens":
		return number(&d.OutputTokens)
	case "echo_key":
		return flag(&d.EchoKey)
	case "hang":
		return flag(&d.Hang)
	case "thinking_tokens":
		return optNumber(&d.ThinkingTokens)
	case "redacted_thinking":
		return flag(&d.RedactedThinking)
	case "tool_use":
		if !hasValue || value == "" {
			return errors.New("tool_use: needs a tool name, e.g. tool_use=get_weather")
		}
		d.ToolUse = value
		return nil
	case "web_search":
		return number(&d.WebSearch)
	case "search_result_tokens":
		return optNumber(&d.SearchResultTokens)
	case "web_fetch":
		return number(&d.WebFetch)
	case "fetch_tokens":
		return optNumber(&d.FetchTokens)
	case "iterations":
		return number(&d.Iterations)
	case "doc_pages":
		return optNumber(&d.DocPages)
	case "doc_page_tokens":
		return optNumber(&d.DocPageTokens)
	case "image_size":
		if !hasValue || value == "" {
			return errors.New("image_size: needs a value, e.g. image_size=1092x1092")
		}
		d.ImageSize = value
		return nil
	case "input_tokens":
		return optNumber(&d.InputTokens)
	case "server_input_tokens":
		return optNumber(&d.ServerInputTokens)
	case "long_line":
		return number(&d.LongLine)
	case "echo_key_headers":
		return flag(&d.EchoKeyHeaders)
	case "echo_key_fields":
		return flag(&d.EchoKeyFields)
	}
	return fmt.Errorf("unknown key %q (known: %s)", key, strings.Join(directiveKeys, ", "))
}

// directiveKeys lists every key set understands, for the unknown-key message.
var directiveKeys = []string{
	"status", "error_type", "retry_after", "retry_after_ms", "should_retry", "spend_limit",
	"first_byte_ms", "event_delay_ms", "error_after", "drop_after", "usage_deltas", "output_tokens",
	"echo_key", "hang", "thinking_tokens", "redacted_thinking", "tool_use", "web_search",
	"search_result_tokens", "web_fetch", "fetch_tokens", "iterations", "doc_pages", "doc_page_tokens",
	"image_size", "input_tokens", "server_input_tokens", "long_line", "echo_key_headers", "echo_key_fields",
}
