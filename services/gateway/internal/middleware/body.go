package middleware

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keyward/keyward/services/gateway/internal/httperr"
	"github.com/keyward/keyward/services/gateway/internal/reqctx"
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Body reads a POST body exactly once, capped at limit bytes (chunked bodies
// included, via MaxBytesReader), after checking it is application/json (a
// text/plain POST would be a CORS "simple" request that skips the preflight).
// Signature checks hash, and handlers parse, this same buffer. The read must
// make progress (see ReadProgress): a body that trickles gets a 408 and its
// connection closed, releasing the slots it held.
func Body(limit int64, progress ReadProgress, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.Method != http.MethodPost {
			c.Next()
			return
		}
		if ct := c.GetHeader("Content-Type"); ct != "application/json" {
			// The exact common spelling skips the parser (and its
			// parameter map); everything else is judged by it.
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || mt != "application/json" {
				closeUnread(c)
				httperr.Write(c, log, httperr.UnsupportedMedia())
				return
			}
		}
		if c.Request.ContentLength > limit {
			closeUnread(c)
			httperr.Write(c, log, httperr.TooLarge(limit))
			return
		}
		if c.Request.ContentLength != 0 {
			// Zero-length bodies are skipped: net/http is already
			// watching their connection, and a read deadline would
			// apply to that watch.
			c.Request.Body = progress.wrap(c)
		}
		var body []byte
		if n := c.Request.ContentLength; n >= 0 {
			// The length is known and within the limit: one exact
			// allocation. net/http ends the body at Content-Length, so
			// a short body is an error and a longer one impossible.
			body = make([]byte, n)
			_, err := io.ReadFull(c.Request.Body, body)
			if err == nil {
				// Reading on to EOF is what starts net/http's watch
				// for a client that goes away mid-request (context
				// cancellation); it returns at once.
				var one [1]byte
				if m, rerr := c.Request.Body.Read(one[:]); m != 0 || !errors.Is(rerr, io.EOF) {
					err = errors.New("body longer than Content-Length")
				}
			}
			if err != nil {
				writeReadError(c, log, err)
				return
			}
		} else {
			var ok bool
			if body, ok = readChunked(c, limit, log); !ok {
				return
			}
		}
		reqctx.Get(c).Body = body
		c.Request.Body = io.NopCloser(bytes.NewReader(body))
		c.Next()
	}
}

// readChunked reads a body of unknown length (chunked) up to limit through
// a pooled buffer; it writes the error answer itself when it fails.
func readChunked(c *gin.Context, limit int64, log *slog.Logger) ([]byte, bool) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	_, err := buf.ReadFrom(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		bufPool.Put(buf)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httperr.Write(c, log, httperr.TooLarge(limit))
			return nil, false
		}
		writeReadError(c, log, err)
		return nil, false
	}
	body := make([]byte, buf.Len())
	copy(body, buf.Bytes())
	if buf.Cap() <= 1<<20 {
		bufPool.Put(buf)
	}
	return body, true
}

// ReadProgress bounds how long a request body may take: Timeout for any
// body, plus one second per MinRate bytes received, so a large body that
// keeps arriving gets the time it needs and a trickle is cut at Timeout.
// Zero values disable the bound.
type ReadProgress struct {
	Timeout time.Duration
	MinRate int64 // bytes per second
}

// maxBodyTime matches the public server's ReadTimeout, which the deadlines
// set here replace: progress never buys more than that.
const maxBodyTime = 30 * time.Second

// errSlowBody marks a body that did not arrive in time.
var errSlowBody = errors.New("request body too slow")

func (p ReadProgress) wrap(c *gin.Context) io.ReadCloser {
	if p.Timeout <= 0 {
		return c.Request.Body
	}
	return &progressReader{ReadCloser: c.Request.Body, rc: *http.NewResponseController(c.Writer), p: p, start: time.Now()}
}

// progressReader moves the connection's read deadline ahead of each read
// by what the bytes so far have earned. It stops once it has seen EOF:
// net/http then starts its own background read of the connection (clearing
// the deadline), which a deadline set afterwards would break.
type progressReader struct {
	io.ReadCloser
	rc     http.ResponseController
	p      ReadProgress
	start  time.Time
	n      int64
	eof    bool
	noCtrl bool // the writer cannot set deadlines (in-process tests)
}

func (r *progressReader) Read(b []byte) (int, error) {
	if r.eof {
		return 0, io.EOF
	}
	if !r.noCtrl {
		earned := r.p.Timeout
		if r.p.MinRate > 0 {
			earned += time.Duration(float64(r.n) / float64(r.p.MinRate) * float64(time.Second))
		}
		if err := r.rc.SetReadDeadline(r.start.Add(min(earned, maxBodyTime))); err != nil {
			r.noCtrl = true
		}
	}
	n, err := r.ReadCloser.Read(b)
	r.n += int64(n)
	if err == io.EOF {
		r.eof = true
	}
	if err != nil && !r.eof && isTimeout(err) {
		return n, errSlowBody
	}
	return n, err
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// writeReadError answers a body that could not be read: 408 when it was too
// slow (the connection is closed: the rest of the body would never be
// read), else 400.
func writeReadError(c *gin.Context, log *slog.Logger, err error) {
	if errors.Is(err, errSlowBody) {
		c.Header("Connection", "close")
		httperr.Write(c, log, &httperr.Error{Status: http.StatusRequestTimeout, Short: "Request timeout",
			Message: "the request body arrived too slowly", Type: "timeout_error", Outcome: "slow_body"})
		return
	}
	httperr.Write(c, log, httperr.Invalid("could not read the request body"))
}

// closeUnread marks a refusal answered before the body was read to close
// its connection. Otherwise net/http, before writing the answer, reads and
// discards up to 256 KiB of the unread body to keep the connection — and
// a body that trickles would hold the refusal itself until the read
// timeout.
func closeUnread(c *gin.Context) {
	if c.Request.ContentLength != 0 {
		c.Header("Connection", "close")
	}
}
