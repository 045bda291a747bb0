package handlers

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keyward/keyward/pkg/anthropic"
	"github.com/keyward/keyward/services/gateway/internal/httperr"
)

// modelJSON is one entry of Anthropic's Models API.
type modelJSON struct {
	Type           string `json:"type"`
	ID             string `json:"id"`
	DisplayName    string `json:"display_name"`
	CreatedAt      string `json:"created_at"`
	MaxInputTokens int64  `json:"max_input_tokens,omitempty"`
	MaxTokens      int64  `json:"max_tokens,omitempty"`
}

type modelPage struct {
	Data    []modelJSON `json:"data"`
	HasMore bool        `json:"has_more"`
	FirstID *string     `json:"first_id"`
	LastID  *string     `json:"last_id"`
}

func toModelJSON(m anthropic.ModelInfo) modelJSON {
	return modelJSON{
		Type: "model", ID: m.ID, DisplayName: m.DisplayName,
		CreatedAt:      m.CreatedAt.UTC().Format(time.RFC3339),
		MaxInputTokens: m.MaxInputTokens, MaxTokens: m.MaxTokens,
	}
}

const (
	defaultModelsLimit = 20
	maxModelsLimit     = 1000
)

// Models is GET /v1/models: the models this gateway allows (and its
// aliases), newest first, paginated as Anthropic's API does (limit, after_id,
// before_id; has_more, first_id, last_id). It is served locally, never
// forwarded, so the list is exactly what a caller may send.
func (h *Handlers) Models() gin.HandlerFunc {
	all := h.Cfg.ListedModels()
	list := make([]modelJSON, len(all))
	index := make(map[string]int, len(all))
	for i, m := range all {
		list[i] = toModelJSON(m)
		index[m.ID] = i
	}
	return h.handle(func(c *gin.Context) error {
		q := c.Request.URL.Query()
		limit := defaultModelsLimit
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxModelsLimit {
				return httperr.Invalid("limit: must be an integer from 1 to 1000", "limit")
			}
			limit = n
		}
		after, before := q.Get("after_id"), q.Get("before_id")
		if after != "" && before != "" {
			return httperr.Invalid("send at most one of after_id and before_id", "after_id", "before_id")
		}
		start, end := 0, min(limit, len(list))
		hasMore := end < len(list)
		switch {
		case after != "":
			i, ok := index[after]
			if !ok {
				return httperr.Invalid("after_id: "+strconv.Quote(truncate(after, 64))+" is not a model id of this list", "after_id")
			}
			start = i + 1
			end = min(start+limit, len(list))
			hasMore = end < len(list)
		case before != "":
			i, ok := index[before]
			if !ok {
				return httperr.Invalid("before_id: "+strconv.Quote(truncate(before, 64))+" is not a model id of this list", "before_id")
			}
			end = i
			start = max(0, end-limit)
			hasMore = start > 0
		}
		page := modelPage{Data: list[start:end], HasMore: hasMore}
		if len(page.Data) > 0 {
			page.FirstID, page.LastID = &page.Data[0].ID, &page.Data[len(page.Data)-1].ID
		}
		body, err := json.Marshal(page)
		if err != nil {
			return err
		}
		c.Data(http.StatusOK, "application/json", body)
		return nil
	})
}

// Model is GET /v1/models/{model_id}: one entry of the list, or Anthropic's
// 404 not_found_error for a model this gateway does not allow.
func (h *Handlers) Model() gin.HandlerFunc {
	return h.handle(func(c *gin.Context) error {
		id := c.Param("model_id")
		m, ok := h.Cfg.ListedModel(id)
		if !ok {
			return httperr.ModelNotFound(truncate(id, 64))
		}
		body, err := json.Marshal(toModelJSON(m))
		if err != nil {
			return err
		}
		c.Data(http.StatusOK, "application/json", body)
		return nil
	})
}
