package web_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"regexp"
	"strings"
	"testing"

	"aviary/internal/server/servertest"
	"aviary/web"
)

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := fs.ReadFile(web.FS(), name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every file the page loads is embedded: the links of index.html and the
// imports of the modules, followed from main.js.
func TestEveryReferencedFileIsEmbedded(t *testing.T) {
	html := readFile(t, "index.html")
	refs := regexp.MustCompile(`(?:src|href)="([^"#:]+)"`).FindAllStringSubmatch(html, -1)
	if len(refs) < 4 {
		t.Fatalf("index.html links %d files, want at least 4 (style sheets, favicon, main.js): %v", len(refs), refs)
	}
	for _, r := range refs {
		if strings.HasPrefix(r[1], "api/") {
			continue // the API, not a file
		}
		if _, err := fs.Stat(web.FS(), r[1]); err != nil {
			t.Errorf("index.html links %s, which is not embedded: %v", r[1], err)
		}
	}
	imports := regexp.MustCompile(`(?m)^\s*(?:import|export)\s[^;]*?\sfrom\s+'([^']+)'`)
	seen := map[string]bool{}
	queue := []string{"js/main.js"}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if seen[name] {
			continue
		}
		seen[name] = true
		for _, m := range imports.FindAllStringSubmatch(readFile(t, name), -1) {
			if !strings.HasPrefix(m[1], ".") {
				t.Errorf("%s imports %q: want a relative path (there is no bundler)", name, m[1])
				continue
			}
			dep := path.Join(path.Dir(name), m[1])
			if _, err := fs.Stat(web.FS(), dep); err != nil {
				t.Errorf("%s imports %s, which is not embedded", name, dep)
				continue
			}
			queue = append(queue, dep)
		}
	}
	for _, want := range []string{"js/api.js", "js/overview.js", "js/rollout.js", "js/charts.js", "vendor/uplot/uPlot.esm.js"} {
		if !seen[want] {
			t.Errorf("main.js does not reach %s (reached %v)", want, seen)
		}
	}
	// Every module is used.
	mods, err := fs.Glob(web.FS(), "js/*.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mods {
		if !seen[m] {
			t.Errorf("%s is embedded but nothing imports it", m)
		}
	}
}

// The dashboard's own code never parses text as HTML (everything from the
// API becomes text nodes), never writes to the console (where a token could
// end up), and keeps the token in sessionStorage only.
func TestScriptsAvoidUnsafeSinks(t *testing.T) {
	forbidden := []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
		"DOMParser", "createContextualFragment", "console.", "localStorage", "setAttribute('on", "javascript:"}
	mods, err := fs.Glob(web.FS(), "js/*.js")
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) == 0 {
		t.Fatal("no modules under js/")
	}
	for _, m := range mods {
		src := readFile(t, m)
		for _, f := range forbidden {
			if strings.Contains(src, f) {
				t.Errorf("%s uses %s", m, f)
			}
		}
	}
	html := readFile(t, "index.html")
	for _, want := range []string{`http-equiv="Content-Security-Policy"`, `script-src 'self'`, `default-src 'none'`} {
		if !strings.Contains(html, want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
	if strings.Contains(html, "<script>") || strings.Contains(html, " style=") {
		t.Error("index.html has inline script or style, which its Content-Security-Policy forbids")
	}
}

// The vendored uPlot is the file SOURCE.md records, with its licence.
func TestVendoredUPlotIsRecorded(t *testing.T) {
	record := readFile(t, "vendor/uplot/SOURCE.md")
	for _, name := range []string{"uPlot.esm.js", "uPlot.min.css"} {
		sum := sha256.Sum256([]byte(readFile(t, "vendor/uplot/"+name)))
		line := hex.EncodeToString(sum[:]) + "  " + name
		if !strings.Contains(record, line) {
			t.Errorf("vendor/uplot/SOURCE.md does not record %q: the file changed, or the record is stale", line)
		}
	}
	if lic := readFile(t, "vendor/uplot/LICENSE"); !strings.Contains(lic, "MIT License") || !strings.Contains(lic, "Leon Sorokin") {
		t.Errorf("vendor/uplot/LICENSE is not uPlot's MIT licence:\n%s", lic)
	}
	if esm := readFile(t, "vendor/uplot/uPlot.esm.js"); !strings.Contains(esm, "(v1.6.32)") || !strings.Contains(record, "# uPlot 1.6.32") {
		t.Error("the version in uPlot.esm.js and in SOURCE.md differ")
	}
}

// The server serves the dashboard at / with the right types, so that the
// browser runs the modules.
func TestServerServesTheDashboard(t *testing.T) {
	env := servertest.Start(t, servertest.Options{Dashboard: web.FS()})
	for _, c := range []struct{ path, mediaType, contains string }{
		{"/", "text/html", `<script type="module" src="js/main.js">`},
		{"/js/main.js", "text/javascript", "overviewPage"},
		{"/vendor/uplot/uPlot.esm.js", "text/javascript", "export { uPlot as default }"},
		{"/vendor/uplot/uPlot.min.css", "text/css", ".uplot"},
		{"/app.css", "text/css", "prefers-color-scheme: dark"},
		{"/favicon.svg", "image/svg+xml", "<svg"},
	} {
		res, err := http.Get(env.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
		if res.StatusCode != http.StatusOK || mt != c.mediaType || !strings.Contains(string(body), c.contains) {
			t.Errorf("GET %s: got %d %s (%d bytes), want 200 %s containing %q", c.path, res.StatusCode, mt, len(body), c.mediaType, c.contains)
		}
	}
}
