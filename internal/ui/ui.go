// Package ui serves the embedded web dashboard at /ui/. It is a single
// static page with no external assets that reads the agent's own API.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Handler serves the dashboard under /ui/.
func Handler() http.Handler {
	sub, _ := fs.Sub(static, "static")
	return http.StripPrefix("/ui/", http.FileServerFS(sub))
}
