// Package openapi holds the OpenAPI 3.1 document of the gateway's own API
// (/api/*, /health, /ready, /openapi.json). It is kept by hand beside the
// code, served at GET /openapi.json, and the e2e suite validates every
// response of those paths against it, so the two cannot drift apart.
package openapi

import _ "embed"

// Document is openapi.json as committed.
//
//go:embed openapi.json
var Document []byte
