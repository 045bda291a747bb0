package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/keyward/keyward/pkg/anthropic"
	"github.com/keyward/keyward/services/gateway/internal/httperr"
	"github.com/keyward/keyward/services/gateway/internal/reqctx"
)

const (
	maxQuestionChars = 4000
	maxContextBytes  = 16 << 10
)

type queryBody struct {
	Question *string         `json:"question"`
	Context  json.RawMessage `json:"context"`
	Stream   *bool           `json:"stream"`
}

// Query is POST /api/query: a question about the caller's context data.
func (h *Handlers) Query() gin.HandlerFunc {
	return h.handle(func(c *gin.Context) error {
		st := reqctx.Get(c)
		var q queryBody
		if err := decodeStrict(st.Body, &q); err != nil {
			return err
		}
		var missing []string
		if q.Question == nil {
			missing = append(missing, "question")
		}
		if q.Context == nil {
			missing = append(missing, "context")
		}
		if len(missing) > 0 {
			return httperr.MissingFields(missing...)
		}
		question := strings.TrimSpace(*q.Question)
		switch {
		case question == "":
			return httperr.Invalid("question must not be empty", "question")
		case !utf8.ValidString(question):
			return httperr.Invalid("question must be valid UTF-8 text", "question")
		case utf8.RuneCountInString(question) > maxQuestionChars:
			return httperr.Invalid(fmt.Sprintf("question is longer than %d characters", maxQuestionChars), "question")
		}
		ctxBlock, err := contextBlock(q.Context)
		if err != nil {
			return err
		}
		content := "<context>\n" + ctxBlock + "\n</context>\n\nQuestion: " + question
		return h.ask(c, st, content, q.Stream != nil && *q.Stream, nil)
	})
}

// askRequest is the upstream body ask sends. A struct rather than a map
// (no reflection over map keys); fields in alphabetical order, so the bytes
// are the same as the map's encoding was.
type askRequest struct {
	MaxTokens int64        `json:"max_tokens"`
	Messages  []askMessage `json:"messages"`
	Model     string       `json:"model"`
	Stream    bool         `json:"stream"`
	System    string       `json:"system"`
}

type askMessage struct {
	Content string `json:"content"`
	Role    string `json:"role"`
}

// ask sends one user message with the fixed system prompt and answers in the
// seed's shape (or as SSE when stream is set).
func (h *Handlers) ask(c *gin.Context, st *reqctx.State, content string, stream bool, extra gin.H) error {
	model, maxTokens := h.Cfg.DefaultModel, h.Cfg.QueryMaxTokens
	st.Model, st.Stream = model, stream
	reqBody, err := h.askBody(content, stream)
	if err != nil {
		return err
	}
	if !stream {
		res, err := h.answer(c, st, reqBody)
		if err != nil {
			return err
		}
		for k, v := range extra {
			res[k] = v
		}
		c.JSON(http.StatusOK, res)
		return nil
	}
	release, err := h.reserveStream(st)
	if err != nil {
		return err
	}
	defer release()
	cm, err := h.admitCall(c, st, model, maxTokens, nil, stream, h.estimateReserve(model, reqBody))
	if err != nil {
		return err
	}
	hdr := http.Header{"Anthropic-Version": {"2023-06-01"}, "Content-Type": {"application/json"}}
	return h.streamAnswer(c, st, cm, hdr, reqBody)
}

// askBody is the upstream request for one user message with the fixed
// system prompt.
func (h *Handlers) askBody(content string, stream bool) ([]byte, error) {
	b, err := json.Marshal(askRequest{
		MaxTokens: h.Cfg.QueryMaxTokens,
		Messages:  []askMessage{{Content: content, Role: "user"}},
		Model:     h.Cfg.DefaultModel,
		Stream:    stream,
		System:    h.Cfg.SystemPrompt,
	})
	if err != nil {
		return nil, fmt.Errorf("encoding upstream request: %w", err)
	}
	return b, nil
}

// answer makes one non-streamed call (admitted, charged and settled) and
// returns the seed's answer shape.
func (h *Handlers) answer(c *gin.Context, st *reqctx.State, reqBody []byte) (gin.H, error) {
	model, maxTokens := h.Cfg.DefaultModel, h.Cfg.QueryMaxTokens
	cm, err := h.admitCall(c, st, model, maxTokens, nil, false, h.estimateReserve(model, reqBody))
	if err != nil {
		return nil, err
	}
	hdr := http.Header{"Anthropic-Version": {"2023-06-01"}, "Content-Type": {"application/json"}}
	_, out, err := h.completeJSON(c, st, cm, hdr, reqBody)
	if err != nil {
		return nil, err
	}
	var msg struct {
		Model   string `json:"model"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		Usage anthropic.Usage `json:"usage"`
	}
	if err := json.Unmarshal(h.Client.Redactor().Bytes(out), &msg); err != nil {
		return nil, fmt.Errorf("decoding upstream answer: %w", err)
	}
	var answer strings.Builder
	for _, b := range msg.Content {
		if b.Type == "text" {
			answer.WriteString(b.Text)
		}
	}
	if msg.Model == "" {
		msg.Model = model
	}
	return gin.H{"answer": answer.String(), "model": msg.Model, "usage": msg.Usage, "request_id": st.RequestID}, nil
}

// streamAnswer streams text deltas as `event: delta` / `data: {"text":…}`,
// then `event: done` with model and usage, or `event: error`.
func (h *Handlers) streamAnswer(c *gin.Context, st *reqctx.State, cm *callMoney, hdr http.Header, body []byte) error {
	model := cm.model
	ctx, cancel := context.WithCancel(c.Request.Context())
	defer cancel()
	resp, err := h.callUpstream(ctx, st, model, "/v1/messages", hdr, body)
	if err != nil {
		cm.settleFailed(err, true)
		return err
	}
	defer resp.Body.Close()
	h.Metrics.StreamsActive.Inc()
	defer h.Metrics.StreamsActive.Dec()
	defer h.boundStreamWrites(c)()
	setStreamHeaders(c, "")
	c.Writer.WriteHeader(http.StatusOK)
	flush := flusherOf(c.Writer)
	flush()
	meter := anthropic.NewStreamMeter()
	cm.live(meter)
	tr := &textDeltas{out: c.Writer}
	end := pump(ctx, h.StreamCtx, h.Cfg.MaxStreamDuration, resp.Body, h.sseOut(tr), flush, meter)
	cancel()
	u := cm.settleStream(meter)
	switch {
	case end == endClientGone:
		st.Outcome = "client_gone"
		return nil
	case end == endComplete && meter.ErrorType() == "":
		done, _ := json.Marshal(gin.H{"model": model, "usage": u, "request_id": st.RequestID})
		writeEvent(c.Writer, "done", done)
	default:
		t, msg := endMessage(end)
		if et := h.Client.Redactor().Token(meter.ErrorType()); et != "" {
			t, msg = et, "the Claude API reported an error mid-stream"
		} else if meter.ErrorType() != "" {
			t, msg = "api_error", "the Claude API reported an error mid-stream"
		}
		st.Outcome = "stream_" + t
		e, _ := json.Marshal(gin.H{"error": "Upstream error", "message": msg, "request_id": st.RequestID})
		writeEvent(c.Writer, "error", e)
	}
	flush()
	return nil
}

func writeEvent(w io.Writer, name string, data []byte) {
	var b bytes.Buffer
	b.Grow(len(name) + len(data) + 16)
	b.WriteString("event: ")
	b.WriteString(name)
	b.WriteString("\ndata: ")
	b.Write(data)
	b.WriteString("\n\n")
	_, _ = w.Write(b.Bytes())
}

// textDeltas translates Anthropic SSE into the dashboard's simple events:
// only text deltas pass; usage arrives in the final "done" event.
type textDeltas struct {
	out     io.Writer
	partial []byte
	event   string
}

func (t *textDeltas) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		// pump's lineCap already bounds lines; the translator is bounded
		// on its own as well, as it holds what it has not parsed.
		if (i < 0 && len(t.partial)+len(p) > maxSSELine) || len(t.partial)+i > maxSSELine {
			t.partial = nil
			return 0, errLineTooLong
		}
		if i < 0 {
			t.partial = append(t.partial, p...)
			break
		}
		line := p[:i]
		if len(t.partial) > 0 {
			t.partial = append(t.partial, line...)
			line = t.partial
		}
		if err := t.line(bytes.TrimSuffix(line, []byte("\r"))); err != nil {
			return 0, err
		}
		t.partial = t.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

func (t *textDeltas) line(l []byte) error {
	switch {
	case bytes.HasPrefix(l, []byte("event:")):
		t.event = string(bytes.TrimSpace(l[len("event:"):]))
	case bytes.HasPrefix(l, []byte("data:")) && t.event == "content_block_delta":
		var ev struct {
			Delta struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"delta"`
		}
		if json.Unmarshal(bytes.TrimSpace(l[len("data:"):]), &ev) == nil && ev.Delta.Type == "text_delta" && ev.Delta.Text != "" {
			data, _ := json.Marshal(map[string]string{"text": ev.Delta.Text})
			writeEvent(t.out, "delta", data)
		}
	}
	return nil
}

// decodeStrict decodes exactly one JSON object with no unknown fields and no
// trailing data; errors name the offending field.
func decodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return httperr.Invalid("the request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &ute):
			f := ute.Field
			if f == "" {
				return httperr.Invalid("the request body must be a JSON object")
			}
			return httperr.Invalid(fmt.Sprintf("%s has the wrong type (got %s)", f, ute.Value), f)
		case errors.As(err, &se):
			return httperr.Invalid(fmt.Sprintf("malformed JSON at byte %d", se.Offset))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return httperr.Invalid(fmt.Sprintf("unknown field %q", truncate(f, 64)), truncate(f, 64))
		default:
			return httperr.Invalid("malformed JSON: " + truncate(err.Error(), 120))
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return httperr.Invalid("unexpected data after the JSON object")
	}
	return nil
}

// contextBlock validates the caller's context (a JSON object of bounded size)
// and re-encodes it with HTML escaping, so a string inside it can never close
// the <context> delimiter early.
func contextBlock(raw json.RawMessage) (string, error) {
	if len(raw) > maxContextBytes {
		return "", httperr.Invalid(fmt.Sprintf("context is larger than %d bytes", maxContextBytes), "context")
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return "", httperr.Invalid("context must be a JSON object", "context")
	}
	b, err := json.MarshalIndent(obj, "", "  ")
	if err != nil {
		return "", httperr.Invalid("context cannot be encoded", "context")
	}
	return string(b), nil
}
