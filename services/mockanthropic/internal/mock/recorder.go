package mock

import (
	"net/http"
	"sync"
	"time"
)

// RecordedRequest is one API request as the mock received it, for tests that assert what
// reached the upstream (which key, which headers, which body).
type RecordedRequest struct {
	Time          time.Time   `json:"time"`
	RequestID     string      `json:"request_id"`
	Method        string      `json:"method"`
	Path          string      `json:"path"`
	Query         string      `json:"query,omitempty"`
	Proto         string      `json:"proto"` // "HTTP/2.0" or "HTTP/1.1": which protocol the caller spoke
	Headers       http.Header `json:"headers"`
	Body          string      `json:"body"`
	BodyTruncated bool        `json:"body_truncated,omitempty"`
	Status        int         `json:"status"` // 0 while the request is still in flight
	Outcome       string      `json:"outcome,omitempty"`
	// Billed is what the real API would bill for the call (zero until it finishes, and for
	// calls nothing is billed for: errors, count_tokens, models).
	Billed Billed `json:"billed"`
}

type recordedRequest = RecordedRequest

// recorder is a ring buffer of the most recent requests. Requests are added on arrival, so
// a test sees a hanging request while it hangs, and completed when they finish.
type recorder struct {
	mu      sync.Mutex
	ring    []*RecordedRequest
	next    int
	full    bool
	bodyMax int
}

func newRecorder(limit, bodyMax int) *recorder {
	return &recorder{ring: make([]*RecordedRequest, limit), bodyMax: bodyMax}
}

func (rc *recorder) add(r *http.Request, id string, body []byte) *RecordedRequest {
	if len(rc.ring) == 0 {
		return nil
	}
	e := &RecordedRequest{
		Time:      time.Now().UTC(),
		RequestID: id,
		Method:    r.Method,
		Path:      r.URL.Path,
		Query:     r.URL.RawQuery,
		Proto:     r.Proto,
		Headers:   r.Header.Clone(),
		Billed:    Billed{Speed: "standard"},
	}
	if len(body) > rc.bodyMax {
		body, e.BodyTruncated = body[:rc.bodyMax], true
	}
	e.Body = string(body)
	rc.mu.Lock()
	rc.ring[rc.next] = e
	rc.next++
	if rc.next == len(rc.ring) {
		rc.next, rc.full = 0, true
	}
	rc.mu.Unlock()
	return e
}

func (rc *recorder) finish(e *RecordedRequest, status int, outcome string, billed *Billed) {
	if e == nil {
		return
	}
	rc.mu.Lock()
	e.Status, e.Outcome, e.Billed = status, outcome, *billed
	rc.mu.Unlock()
}

// book sets a complete reply's status and bill ahead of finish (see Server.book).
func (rc *recorder) book(e *RecordedRequest, status int, billed *Billed) {
	if e == nil {
		return
	}
	rc.mu.Lock()
	e.Status, e.Billed = status, *billed
	rc.mu.Unlock()
}

// snapshot returns copies of the recorded requests, oldest first, optionally only those for
// one path and only the last limit of them.
func (rc *recorder) snapshot(path string, limit int) []RecordedRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var ordered []*RecordedRequest
	if rc.full {
		ordered = append(ordered, rc.ring[rc.next:]...)
	}
	ordered = append(ordered, rc.ring[:rc.next]...)
	out := make([]RecordedRequest, 0, len(ordered))
	for _, e := range ordered {
		if path == "" || e.Path == path {
			out = append(out, *e)
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out
}

func (rc *recorder) reset() {
	rc.mu.Lock()
	clear(rc.ring)
	rc.next, rc.full = 0, false
	rc.mu.Unlock()
}
