// Package web holds the dashboard page: static HTML, CSS and JavaScript,
// embedded in the binary so the distroless image needs no files beside it.
// The page has no inline script or style, so a strict Content-Security-Policy
// (script-src 'self') costs it nothing.
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var files embed.FS

// FS returns the pages' files: index.html, app.js, app.css, favicon.svg,
// the operator page (ops.html, ops.js, ops.css) and
// the vendored chart.js (chart.umd.min.js, copied by web/vendor.sh).
func FS() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		// fs.Sub fails only for an invalid path, and "static" is valid.
		panic(err)
	}
	return sub
}
