package handlers

import (
	"errors"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/keyward/keyward/pkg/anthropic"
	"github.com/keyward/keyward/services/gateway/internal/httperr"
	"github.com/keyward/keyward/services/gateway/internal/reqctx"
)

// reservation is what admit reserves for one Messages call: the estimate of
// the input the body shows, plus the caller's feature policy bound for the
// input the API fetches itself (URL and Files API sources, server tools),
// priced with the fast-mode and inference_geo multipliers and the server
// tool fees. outputTokens is the output to reserve: max_tokens, or the first
// slice of a call whose output is metered and extended live. A feature the
// policy refuses, or whose cost it cannot bound, is a 400 naming it.
//
// The visible input is estimated locally, not counted with the upstream's
// free count_tokens: that would add a round trip to every call, and it
// cannot see the input the API fetches (URL documents, search results)
// anyway, which is what the bounds are for.
func (h *Handlers) reservation(c *gin.Context, st *reqctx.State, req anthropic.MessageRequest, body []byte, outputTokens int64) (anthropic.Reservation, error) {
	f, err := anthropic.DetectFeatures(req, c.Request.Header.Values("anthropic-beta"))
	if err != nil {
		return anthropic.Reservation{}, httperr.Invalid(err.Error())
	}
	res, err := h.Cfg.Prices.Reserve(anthropic.ReserveInput{
		Model:              req.Model,
		VisibleInputTokens: int64(float64(anthropic.EstimateInputTokens(body)) * anthropic.TokenizerFactor(req.Model)),
		Features:           f,
		Policy:             h.Cfg.FeaturePolicy(st.Caller.Tier),
		OutputTokens:       outputTokens,
	})
	switch {
	case err == nil:
		return res, nil
	case errors.Is(err, anthropic.ErrUnpriced):
		// Configuration refuses an unpriced allowed model, so only a
		// model the table cannot resolve gets here: never serve it at $0.
		return res, httperr.Invalid("model: this gateway has no price for "+truncate(req.Model, 64), "model")
	default:
		// Every refused feature, in one message.
		return res, httperr.Invalid(strings.ReplaceAll(err.Error(), "\n", "; "))
	}
}
