// Package web is aviary's dashboard: plain HTML, CSS and JavaScript modules
// that `aviary server` serves at / (server.Options.Dashboard), embedded in
// the binary so that nothing needs building or installing to run it. The
// pages read the HTTP API (docs/api.md) and follow its event stream; the
// charts are drawn by uPlot, vendored under static/vendor/uplot with its
// licence and the record of where it came from.
//
// It imports only the standard library; its browser tests drive the pages
// in headless Chromium against a real server (internal/server/servertest).
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// FS returns the dashboard's files, index.html at its root.
func FS() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // "static" is a valid path, embedded above
	}
	return sub
}
