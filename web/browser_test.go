package web_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// Every wait of the browser tests is bounded by one of these. They are
// generous because the tests must not flake on a loaded two-core machine
// (go test -race ./... runs packages in parallel).
const (
	startTimeout  = 90 * time.Second // the browser process
	actionTimeout = 30 * time.Second // one click, navigation or screenshot
	waitTimeout   = 45 * time.Second // a condition on the page
)

// findChromium returns the browser to drive, or fails the test: these
// tests are part of the suite and do not skip.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("AVIARY_CHROMIUM"); p != "" {
		return p
	}
	if _, err := os.Stat(chromiumPath); err == nil {
		return chromiumPath
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatalf("the dashboard's browser tests need headless Chromium, which is not at %s nor on PATH: "+
		"install the Debian packages chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does), "+
		"or set AVIARY_CHROMIUM to a Chromium binary", chromiumPath)
	return ""
}

// browser is one headless Chromium with one tab, and what its pages wrote
// to the console.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	messages []chromedp.ConsoleMessage
	// expected are substrings of console errors a test provoked on purpose.
	expected []string
}

// startBrowser starts Chromium with a window of width x height. The flags
// keep it off the network (this machine has none, and Chromium otherwise
// tries to reach Google's services) and out of the user's profile.
func startBrowser(t *testing.T, width, height int) *browser {
	t.Helper()
	// Chromium keeps a socket in TMPDIR for as long as it runs and leaves
	// it behind: a directory of the test's own (short, for the socket's
	// path) takes it, and goes with the test.
	tmp, err := os.MkdirTemp("", "aviary-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(findChromium(t)),
		chromedp.Env("TMPDIR=" + tmp),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: ctx}
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for the browser to exit
		if err := os.RemoveAll(tmp); err != nil {
			t.Errorf("remove Chromium's temporary directory: %v", err)
		}
	})

	// The first call starts the browser and lives as long as ctx, so it
	// cannot carry a timeout: a watchdog bounds it instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start Chromium: %v", err)
		}
	case <-time.After(startTimeout):
		cancelTab()
		t.Fatalf("Chromium did not start within %s", startTimeout)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.messages = append(b.messages, m)
			b.mu.Unlock()
		}
	}()
	b.viewport(width, height, false)
	return b
}

// viewport sets the size of the page's viewport; mobile also emulates a
// phone's touch screen and its handling of the viewport meta tag.
func (b *browser) viewport(width, height int, mobile bool) {
	b.t.Helper()
	var opts []chromedp.EmulateViewportOption
	if mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
	}
	b.do(fmt.Sprintf("set the viewport to %dx%d", width, height), chromedp.EmulateViewport(int64(width), int64(height), opts...))
}

// colorScheme emulates prefers-color-scheme: "light" or "dark".
func (b *browser) colorScheme(scheme string) {
	b.t.Helper()
	b.do("prefer the "+scheme+" colour scheme", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return err
	}))
}

// do runs actions, bounded by actionTimeout.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v%s", what, err, b.pageText())
	}
}

// eval evaluates a JavaScript expression in the page, bounded by
// actionTimeout.
func eval[T any](b *browser, expr string, opts ...chromedp.EvaluateOption) T {
	b.t.Helper()
	v, err := tryEval[T](b, expr, opts...)
	if err != nil {
		b.t.Fatalf("evaluate %s: %v%s", expr, err, b.pageText())
	}
	return v
}

func tryEval[T any](b *browser, expr string, opts ...chromedp.EvaluateOption) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
}

// waitFor polls a JavaScript expression until it is true, for at most
// waitTimeout.
func (b *browser) waitFor(what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	var last error
	for {
		ok, err := tryEval[bool](b, expr)
		if err == nil && ok {
			return
		}
		last = err
		if time.Now().After(deadline) {
			b.t.Fatalf("timed out after %s waiting for %s (%s; last error: %v)%s", waitTimeout, what, expr, last, b.pageText())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// navigate opens a URL and waits for the page to load.
func (b *browser) navigate(url string) {
	b.t.Helper()
	b.do("open "+url, chromedp.Navigate(url))
}

// click clicks the element sel finds (a real mouse click on the visible
// element).
func (b *browser) click(sel string) {
	b.t.Helper()
	b.do("click "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// typeInto types text into the input sel finds.
func (b *browser) typeInto(sel, text string) {
	b.t.Helper()
	b.do("type into "+sel, chromedp.SendKeys(chromedp.CSS(sel), text, chromedp.NodeVisible))
}

// scrollTop scrolls the page to its top.
func (b *browser) scrollTop() {
	b.t.Helper()
	b.do("scroll to the top", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
}

// screenshot writes what the viewport shows to path as a PNG.
func (b *browser) screenshot(path string) {
	b.t.Helper()
	b.capture(path, chromedp.CaptureScreenshot())
}

// fullScreenshot writes the whole page to path as a PNG.
func (b *browser) fullScreenshot(path string) {
	b.t.Helper()
	b.capture(path, chromedp.FullScreenshot(100))
}

func (b *browser) capture(path string, shot chromedp.Action[[]byte]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, shot)
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("wrote %s (%d bytes)", path, len(png))
}

// expect marks console errors containing s as provoked by the test.
func (b *browser) expect(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expected = append(b.expected, s)
}

// console returns every console message so far, one per line.
func (b *browser) console() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var sb strings.Builder
	for _, m := range b.messages {
		fmt.Fprintf(&sb, "%s %s\n", m.String(), m.URL)
	}
	return sb.String()
}

// problems returns the exceptions and errors the pages wrote to the
// console, but those the test provoked.
func (b *browser) problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
next:
	for _, m := range b.messages {
		if m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleException {
			continue
		}
		for _, e := range b.expected {
			if strings.Contains(m.Text, e) || strings.Contains(m.URL, e) {
				continue next
			}
		}
		out = append(out, fmt.Sprintf("%s (%s:%d)", m.String(), m.URL, m.Line))
	}
	return out
}

// pageText is the page's visible text, to explain a failure.
func (b *browser) pageText() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return "\n(the page did not answer)"
		}
		return "\n(could not read the page: " + err.Error() + ")"
	}
	if len(text) > 3000 {
		text = text[:3000] + "…"
	}
	return "\n--- the page shows:\n" + text + "\n--- console:\n" + b.console()
}
