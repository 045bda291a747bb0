package handlers

import (
	"bytes"
	"errors"
	"io"

	"github.com/keyward/keyward/pkg/anthropic"
)

// maxSSELine caps one upstream SSE line on every streaming path, the same
// bound the usage meter holds a line to (pkg/anthropic).
const maxSSELine = 1 << 20

// errLineTooLong ends a stream whose upstream sent a line over maxSSELine.
var errLineTooLong = errors.New("upstream SSE line too long")

// lineCap passes whole lines on and holds the unfinished tail of a read
// until its newline arrives, at most maxSSELine bytes: an upstream that
// sends an endless line costs at most that much memory, and the caller
// never receives half a line (so the error event that follows parses).
// An SSE client dispatches nothing before a line ends, so holding the
// tail delays nothing a caller could see.
//
// Whole lines are also what makes the stream redactable: the server key
// never spans a newline, so each forwarded run of lines passes the
// Redactor as it is.
type lineCap struct {
	w    io.Writer
	rd   anthropic.Redactor
	tail []byte
}

// sseOut is the writer a stream's upstream bytes go to the caller through:
// line-capped and redacted.
func (h *Handlers) sseOut(w io.Writer) io.Writer {
	return &lineCap{w: w, rd: h.Client.Redactor()}
}

// asLineCap wraps w unless it is already capped (pump takes either).
func asLineCap(w io.Writer) *lineCap {
	if l, ok := w.(*lineCap); ok {
		return l
	}
	return &lineCap{w: w}
}

func (l *lineCap) Write(p []byte) (int, error) {
	n := len(p)
	first := bytes.IndexByte(p, '\n')
	if first < 0 {
		first = len(p)
	}
	if len(l.tail)+first > maxSSELine || (len(p) > maxSSELine && longLine(p)) {
		return 0, l.fail()
	}
	last := bytes.LastIndexByte(p, '\n')
	if last < 0 {
		l.tail = append(l.tail, p...)
		return n, nil
	}
	head := p[:last+1]
	if len(l.tail) > 0 {
		head = append(l.tail, head...)
	}
	if _, err := l.w.Write(l.rd.Bytes(head)); err != nil {
		return 0, err
	}
	if cap(l.tail) > 64<<10 {
		l.tail = nil // do not keep a long line's buffer for the whole stream
	}
	l.tail = append(l.tail[:0], p[last+1:]...)
	return n, nil
}

// fail drops the held tail and ends whatever event the caller has
// pending with a blank line, so the error event after it stands alone.
func (l *lineCap) fail() error {
	l.tail = nil
	_, _ = io.WriteString(l.w, "\n")
	return errLineTooLong
}

// longLine reports whether p holds a line over maxSSELine (only possible
// for writes larger than the cap).
func longLine(p []byte) bool {
	for len(p) > maxSSELine {
		i := bytes.IndexByte(p, '\n')
		if i < 0 || i > maxSSELine {
			return true
		}
		p = p[i+1:]
	}
	return false
}
