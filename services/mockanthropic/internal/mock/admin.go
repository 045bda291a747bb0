package mock

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// maxAdminBody bounds admin request bodies; fault scripts are small.
const maxAdminBody = 1 << 20

// admin serves the /_mock/ API that tests use to script faults and inspect traffic. The
// gateway never forwards these paths, so they need no credential.
func (s *Server) admin(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/_mock/health":
		if allow(w, r, http.MethodGet) {
			adminJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}
	case "/_mock/faults":
		s.adminFaults(w, r)
	case "/_mock/config":
		s.adminConfig(w, r)
	case "/_mock/requests":
		s.adminRequests(w, r)
	case "/_mock/stats":
		if allow(w, r, http.MethodGet) {
			st := s.stats.snapshot()
			st.FaultsPending = s.faults.queued.Load()
			adminJSON(w, http.StatusOK, st)
		}
	case "/_mock/billing":
		switch r.Method {
		case http.MethodGet:
			adminJSON(w, http.StatusOK, s.billing.snapshot())
		case http.MethodDelete:
			s.billing.reset()
			adminJSON(w, http.StatusOK, s.billing.snapshot())
		default:
			allow(w, r, "GET, DELETE")
		}
	case "/_mock/reset":
		if allow(w, r, http.MethodPost) {
			s.faults.reset()
			s.rec.reset()
			s.stats.reset()
			s.cache.reset()
			s.billing.reset()
			adminJSON(w, http.StatusOK, map[string]string{"status": "reset"})
		}
	default:
		writeError(w, newAPIError(http.StatusNotFound, errNotFound,
			"Not Found: the admin API has /_mock/{health,faults,config,requests,billing,stats,reset}"), newID("req_"))
	}
}

// faultsBody is the JSON of POST /_mock/faults and GET /_mock/faults.
type faultsBody struct {
	Queue []Directives `json:"queue"`
}

func (s *Server) adminFaults(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		adminJSON(w, http.StatusOK, faultsBody{Queue: s.faults.pending()})
	case http.MethodPost:
		var body faultsBody
		if !decodeAdmin(w, r, &body) {
			return
		}
		if body.Queue == nil {
			adminError(w, `queue: Field required, e.g. {"queue":[{"status":529}]}`)
			return
		}
		for i := range body.Queue {
			if err := body.Queue[i].Validate(); err != nil {
				adminError(w, fmt.Sprintf("queue.%d: %v", i, err))
				return
			}
		}
		n := s.faults.enqueue(body.Queue)
		adminJSON(w, http.StatusOK, map[string]int{"pending": n})
	case http.MethodDelete:
		s.faults.clearQueue()
		adminJSON(w, http.StatusOK, map[string]int{"pending": 0})
	default:
		allow(w, r, "GET, POST, DELETE")
	}
}

func (s *Server) adminConfig(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		adminJSON(w, http.StatusOK, s.faults.currentDefaults())
	case http.MethodPost:
		var d Directives
		if !decodeAdmin(w, r, &d) {
			return
		}
		if err := d.Validate(); err != nil {
			adminError(w, err.Error())
			return
		}
		s.faults.setDefaults(d)
		adminJSON(w, http.StatusOK, d)
	default:
		allow(w, r, "GET, POST")
	}
}

func (s *Server) adminRequests(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		limit := 0
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				adminError(w, "limit: want a whole number ≥ 1")
				return
			}
			limit = n
		}
		adminJSON(w, http.StatusOK, map[string][]RecordedRequest{"requests": s.rec.snapshot(q.Get("path"), limit)})
	case http.MethodDelete:
		s.rec.reset()
		adminJSON(w, http.StatusOK, map[string][]RecordedRequest{"requests": {}})
	default:
		allow(w, r, "GET, DELETE")
	}
}

// allow reports whether r uses method, answering 405 when it does not.
func allow(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method {
		return true
	}
	w.Header().Set("Allow", method)
	writeError(w, newAPIError(http.StatusMethodNotAllowed, errInvalidRequest,
		"Method Not Allowed: "+r.URL.Path+" accepts "+method), newID("req_"))
	return false
}

// decodeAdmin decodes a JSON body strictly: an unknown field is a typo in a test script,
// and silently ignoring it would make the test pass for the wrong reason.
func decodeAdmin(w http.ResponseWriter, r *http.Request, dst any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		adminError(w, "request body: "+err.Error())
		return false
	}
	return true
}

func adminError(w http.ResponseWriter, msg string) {
	writeError(w, invalidRequest(msg), newID("req_"))
}

func adminJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, newAPIError(http.StatusInternalServerError, errAPI, "encoding response: "+err.Error()), newID("req_"))
		return
	}
	writeJSON(w, status, b)
}
