package openapi

import (
	"context"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"
)

// TestDocumentIsValidOpenAPI31 loads the document as kin-openapi does for
// the e2e suite and validates it against the 3.1 rules.
func TestDocumentIsValidOpenAPI31(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(Document)
	require.NoError(t, err)
	require.True(t, doc.IsOpenAPI31OrLater(), "the document is OpenAPI 3.1")
	require.NoError(t, doc.Validate(context.Background()))
	for _, p := range []string{"/health", "/ready", "/openapi.json", "/api/query", "/api/analytics-query", "/api/analytics-query-types", "/api/rate-limit-status"} {
		require.NotNil(t, doc.Paths.Value(p), p)
	}
	for _, p := range []string{"/api/query", "/api/analytics-query"} {
		op := doc.Paths.Value(p).Post
		require.NotNil(t, op.Responses.Status(429), "%s documents its 429", p)
		hdrs := op.Responses.Status(429).Value.Headers
		for _, h := range []string{"Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} {
			require.Contains(t, hdrs, h, "%s 429 documents %s", p, h)
		}
	}
	errSchema := doc.Components.Schemas["Error"].Value
	for _, f := range []string{"error", "message", "fields", "retry_after", "request_id"} {
		require.Contains(t, errSchema.Properties, f, "the seed's error shape has %s", f)
	}
	aq := doc.Paths.Value("/api/analytics-query").Post.Responses
	require.Contains(t, *aq.Status(502).Value.Description, "Data source error", "the data source's failures are documented")
	require.Contains(t, *aq.Status(504).Value.Description, "Data source timeout")
	require.Contains(t, aq.Status(200).Value.Headers, "X-Keyward-Data-Source")
	entry := doc.Components.Schemas["Catalog"].Value.Properties["query_types"].Value.AdditionalProperties.Schema.Value
	require.Contains(t, entry.Properties, "data_source")
}
