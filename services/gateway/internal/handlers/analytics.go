package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/keyward/keyward/services/gateway/internal/catalog"
	"github.com/keyward/keyward/services/gateway/internal/httperr"
	"github.com/keyward/keyward/services/gateway/internal/reqctx"
)

// DataSourceHeader is set to "server" on an answer whose data the gateway
// fetched from the type's data source (the caller's data was not read).
const DataSourceHeader = "X-Keyward-Data-Source"

type analyticsBody struct {
	QueryType  *string        `json:"query_type"`
	Parameters map[string]any `json:"parameters"`
	Data       any            `json:"data"`
	Stream     *bool          `json:"stream"`
}

// AnalyticsQuery is POST /api/analytics-query: a whitelisted query type with
// typed parameters and typed data; the prompt comes from the catalog, not the
// caller, and the data block is written by the gateway from checked values.
// A type with a data source takes its data from there, and the caller's
// "data" is ignored: a browser cannot change the numbers the model sees.
func (h *Handlers) AnalyticsQuery() gin.HandlerFunc {
	return h.handle(func(c *gin.Context) error {
		st := reqctx.Get(c)
		var q analyticsBody
		if err := decodeStrict(st.Body, &q); err != nil {
			return err
		}
		if q.QueryType == nil {
			return httperr.MissingFields("query_type")
		}
		qt, ok := h.Cfg.Catalog[*q.QueryType] // exact lookup only
		if !ok {
			e := httperr.Invalid(fmt.Sprintf("unknown query_type %q; allowed: %s", truncate(*q.QueryType, 64), strings.Join(h.Cfg.Catalog.Names(), ", ")), "query_type")
			e.Short = "Invalid query type"
			return e
		}
		data := q.Data
		if qt.Source != nil {
			var err error
			if data, err = h.sourceData(c, st, qt, q.Parameters); err != nil {
				return err
			}
		}
		prompt, err := qt.RenderWithData(q.Parameters, data)
		if err != nil {
			return paramError(err)
		}
		stream := q.Stream != nil && *q.Stream
		if qt.CacheTTL > 0 && h.Cache != nil {
			return h.askCached(c, st, qt, prompt, stream)
		}
		return h.ask(c, st, prompt, stream, gin.H{"query_type": qt.Name})
	})
}

// paramError maps the catalog's parameter and data errors to 400s naming
// the fields.
func paramError(err error) error {
	var pe *catalog.ParamError
	if !errors.As(err, &pe) {
		return err
	}
	e := httperr.Invalid(pe.Message, pe.Fields...)
	e.Short = "Invalid parameters"
	if pe.Data {
		e.Short = "Invalid data"
	}
	return e
}

// sourceData checks the parameters, then fetches the type's data from its
// source with them. A caller whose request rate is used up gets its 429
// before the source is called, so refused callers cannot drive the source.
// A failed fetch is a 502 (504 for a timeout) naming the problem, never
// the URL, and nothing is reserved or sent upstream.
func (h *Handlers) sourceData(c *gin.Context, st *reqctx.State, qt *catalog.QueryType, params map[string]any) (any, error) {
	values, err := qt.Values(params)
	if err != nil {
		return nil, paramError(err)
	}
	if err := h.requestLeft(c, st); err != nil {
		return nil, err
	}
	data, err := qt.FetchData(c.Request.Context(), values)
	var se *catalog.SourceError
	switch {
	case errors.As(err, &se):
		h.Metrics.SourceRequests.WithLabelValues(se.Kind).Inc()
		h.Log.Warn("analytics data source failed", "request_id", st.RequestID, "query_type", qt.Name,
			"source", catalog.SafeURL(qt.Source.URL), "result", se.Kind, "detail", se.Detail)
		e := &httperr.Error{Status: http.StatusBadGateway, Short: "Data source error", Message: se.Message, Type: "api_error", Outcome: "source_" + se.Kind}
		if se.Timeout() {
			e.Status, e.Short = http.StatusGatewayTimeout, "Data source timeout"
		}
		return nil, e
	case err != nil:
		return nil, err // the caller went away
	}
	h.Metrics.SourceRequests.WithLabelValues("ok").Inc()
	c.Header(DataSourceHeader, "server")
	return data, nil
}

// requestLeft refuses, with the limiter's own 429, a caller with no request
// left in its window. It only looks (Status consumes nothing); when the
// window looks empty, Admit makes the refusal, which also consumes nothing.
// The call that follows admits as usual.
func (h *Handlers) requestLeft(c *gin.Context, st *reqctx.State) error {
	pol := h.Cfg.PolicyFor(st.Caller.Tier)
	s, err := h.Limiter.Status(c.Request.Context(), st.Caller.Key, pol)
	if err != nil || s.Limit.IsZero() || s.Remaining > 0 {
		return nil // the admission of the call decides
	}
	_, err = h.admit(c, st, 0, 0, "")
	return err
}

// AnalyticsQueryTypes is GET /api/analytics-query-types: the catalog, so
// clients can render a form per query type. It never reaches the upstream.
// A type whose data the gateway fetches itself says "data_source": "server".
func (h *Handlers) AnalyticsQueryTypes() gin.HandlerFunc {
	out := map[string]any{}
	for name, qt := range h.Cfg.Catalog {
		entry := gin.H{"description": qt.Description, "parameters": qt.Parameters}
		if len(qt.Data) > 0 {
			entry["data"] = qt.Data
		}
		if qt.CacheTTL > 0 {
			entry["cache_ttl_seconds"] = int64(qt.CacheTTL.Seconds())
		}
		if qt.Source != nil {
			entry["data_source"] = "server"
		}
		out[name] = entry
	}
	body, _ := json.Marshal(gin.H{"query_types": out})
	return func(c *gin.Context) { c.Data(http.StatusOK, "application/json", body) }
}
