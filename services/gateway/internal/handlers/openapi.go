package handlers

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/keyward/keyward/services/gateway/internal/openapi"
)

// OpenAPI is GET /openapi.json: the document of the gateway's own API. It
// sits before auth, like /health: it describes the API, it grants nothing.
func (h *Handlers) OpenAPI() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Header("Cache-Control", "public, max-age=300")
		c.Data(http.StatusOK, "application/json", openapi.Document)
	}
}
