package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/keyward/keyward/services/gateway/internal/catalog"
	"github.com/keyward/keyward/services/gateway/internal/reqctx"
)

// CacheHeader says whether a catalog answer came from the shared cache.
const CacheHeader = "X-Keyward-Cache"

// askCached answers a cacheable catalog query through the shared answer
// cache. The key is the type plus a hash of the exact upstream request: the
// checked parameters and data as the gateway rendered them, the model, the
// system prompt and max_tokens, so a change to any of them (a new prompt
// version included) is a different entry. A miss is one ordinary call,
// charged to its caller; a hit costs no tokens or budget but still takes
// one request from the caller's rate, before the answer is served.
//
// A streamed request is answered from the same entry, replayed as the
// /api stream (one delta with the whole text, then done); on a miss the
// call behind it is made in one piece, so that it can be shared.
func (h *Handlers) askCached(c *gin.Context, st *reqctx.State, qt *catalog.QueryType, content string, stream bool) error {
	st.Model, st.Stream = h.Cfg.DefaultModel, stream
	reqBody, err := h.askBody(content, false)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(reqBody)
	key := qt.Name + ":" + hex.EncodeToString(sum[:])
	val, hit, err := h.Cache.Get(c.Request.Context(), key, qt.CacheTTL, func(context.Context) ([]byte, error) {
		res, err := h.answer(c, st, reqBody)
		if err != nil {
			return nil, err
		}
		delete(res, "request_id") // each caller gets its own
		b, err := json.Marshal(res)
		if err != nil {
			return nil, fmt.Errorf("encoding the answer for the cache: %w", err)
		}
		return b, nil
	})
	if err != nil {
		return err
	}
	res := map[string]any{}
	if err := json.Unmarshal(val, &res); err != nil {
		return fmt.Errorf("decoding a cached answer: %w", err)
	}
	if hit {
		if _, err := h.admit(c, st, 0, 0, ""); err != nil { // a hit makes no upstream call: no lease
			h.Metrics.CacheRequests.WithLabelValues("hit_refused").Inc()
			return err
		}
		st.Outcome = "cache_hit"
		h.Metrics.CacheRequests.WithLabelValues("hit").Inc()
		c.Header(CacheHeader, "hit")
	} else {
		h.Metrics.CacheRequests.WithLabelValues("miss").Inc()
		c.Header(CacheHeader, "miss")
	}
	res["request_id"] = st.RequestID
	res["query_type"] = qt.Name
	if !stream {
		c.JSON(http.StatusOK, res)
		return nil
	}
	text, _ := res["answer"].(string)
	delta, err := json.Marshal(gin.H{"text": text})
	if err != nil {
		return fmt.Errorf("encoding a cached answer: %w", err)
	}
	done, err := json.Marshal(gin.H{"model": res["model"], "usage": res["usage"], "request_id": st.RequestID})
	if err != nil {
		return fmt.Errorf("encoding a cached answer: %w", err)
	}
	setStreamHeaders(c, "")
	c.Writer.WriteHeader(http.StatusOK)
	if text != "" {
		writeEvent(c.Writer, "delta", delta)
	}
	writeEvent(c.Writer, "done", done)
	flusherOf(c.Writer)()
	return nil
}
