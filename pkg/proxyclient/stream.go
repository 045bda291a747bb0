package proxyclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// StreamDone is the last event of a streamed answer.
type StreamDone struct {
	Model     string `json:"model"`
	Usage     Usage  `json:"usage"`
	RequestID string `json:"request_id"`
}

// Stream is an answer being written. It is not safe for concurrent use.
type Stream struct {
	ctx     context.Context
	body    io.ReadCloser
	sc      *bufio.Scanner
	text    string
	final   *StreamDone
	err     error
	done    bool
	pending []string // deltas of a non-streamed (JSON) answer
	data    []byte   // the current event's data, reused between events
}

// maxEventBytes bounds one SSE line; a delta is a few words, so this is
// generous while still refusing an endless line.
const maxEventBytes = 1 << 20

func newStream(ctx context.Context, resp *http.Response, path string) *Stream {
	s := &Stream{ctx: ctx, body: resp.Body}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/json" {
		// A gateway (or a proxy in front of it) that answered in one piece:
		// present it through the same interface rather than failing.
		defer resp.Body.Close()
		var a Answer
		if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBytes)).Decode(&a); err != nil {
			s.err = fmt.Errorf("decoding answer of POST %s: %w", path, err)
			s.done = true
			return s
		}
		if a.Answer != "" {
			s.pending = []string{a.Answer}
		}
		s.final = &StreamDone{Model: a.Model, Usage: a.Usage, RequestID: a.RequestID}
		return s
	}
	s.sc = bufio.NewScanner(resp.Body)
	s.sc.Buffer(make([]byte, 0, 4096), maxEventBytes)
	return s
}

// Next advances to the next piece of text. It returns false at the end of
// the answer or on an error; Err tells which.
func (s *Stream) Next() bool {
	if len(s.pending) > 0 {
		s.text, s.pending = s.pending[0], s.pending[1:]
		return true
	}
	if s.done || s.sc == nil {
		s.done = true
		return false
	}
	for {
		event, data, ok := s.readEvent()
		if !ok {
			return false
		}
		switch event {
		case "delta":
			var d struct {
				Text string `json:"text"`
			}
			if err := json.Unmarshal(data, &d); err != nil {
				return s.fail(fmt.Errorf("decoding delta event: %w", err))
			}
			if d.Text == "" {
				continue
			}
			s.text = d.Text
			return true
		case "done":
			var d StreamDone
			if err := json.Unmarshal(data, &d); err != nil {
				return s.fail(fmt.Errorf("decoding done event: %w", err))
			}
			s.final = &d
			s.finish(nil)
			return false
		case "error":
			e := &Error{}
			fillFromBody(e, data)
			if e.Code == "" {
				e.Code = "stream_error"
			}
			return s.fail(e)
		default:
			// Unknown events are skipped so that the gateway can add
			// some (progress, pings) without breaking old clients.
		}
	}
}

// readEvent reads one SSE event (RFC-style: "event:" and "data:" lines up
// to a blank line). Comment lines (": ping") are ignored.
func (s *Stream) readEvent() (event string, data []byte, ok bool) {
	s.data = s.data[:0]
	hasData := false
	for s.sc.Scan() {
		line := s.sc.Bytes()
		if len(line) == 0 {
			if hasData {
				if event == "" {
					event = "message"
				}
				return event, s.data, true
			}
			event = ""
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			event = eventName(value)
		case "data":
			if hasData {
				s.data = append(s.data, '\n')
			}
			s.data = append(s.data, value...)
			hasData = true
		}
	}
	err := s.sc.Err()
	if ctxErr := s.ctx.Err(); ctxErr != nil {
		err = ctxErr
	} else if err == nil {
		// The connection closed without a done event: the answer is
		// truncated, and saying so beats passing half an answer off as whole.
		err = io.ErrUnexpectedEOF
	}
	s.fail(fmt.Errorf("reading answer stream: %w", err))
	return "", nil, false
}

// eventName avoids allocating for the names the gateway sends.
func eventName(b []byte) string {
	switch string(b) {
	case "delta":
		return "delta"
	case "done":
		return "done"
	case "error":
		return "error"
	}
	return string(b)
}

func (s *Stream) fail(err error) bool {
	s.finish(err)
	return false
}

func (s *Stream) finish(err error) {
	if s.done {
		return
	}
	s.done = true
	s.err = err
	s.text = ""
	_ = s.body.Close()
}

// Text is the piece of text Next advanced to.
func (s *Stream) Text() string { return s.text }

// Err is the error that ended the stream, nil after a complete answer. An
// error reported by the gateway mid-stream is an *Error with Status 0.
func (s *Stream) Err() error { return s.err }

// Final is the closing event (model, usage, request id), or nil until the
// whole answer has been read.
func (s *Stream) Final() *StreamDone {
	if s.err != nil {
		return nil
	}
	return s.final
}

// Close stops reading; the gateway sees the disconnect and stops the
// upstream answer. It is safe to call more than once.
func (s *Stream) Close() error {
	if !s.done {
		s.finish(nil)
		if s.err == nil && s.final == nil {
			s.err = errClosed
		}
	}
	return nil
}

var errClosed = errors.New("stream closed before the answer was complete")

// Collect reads the rest of the stream and returns the text joined, then
// closes the stream.
func (s *Stream) Collect() (string, error) {
	defer s.Close()
	var b strings.Builder
	for s.Next() {
		b.WriteString(s.text)
	}
	return b.String(), s.Err()
}
