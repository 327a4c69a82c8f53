package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"aviary/internal/rollout"
	"aviary/internal/server"
	"github.com/spf13/cobra"
)

// errRunEnded stops reading the stream: the run is over.
var errRunEnded = errors.New("run ended")

// runFailed is a watched run that did not succeed (exit code 1).
type runFailed struct {
	name, msg string
	phase     rollout.Phase
}

func (e runFailed) Error() string {
	return fmt.Sprintf("rollout %s: %s: %s", e.name, e.phase, e.msg)
}

// watcher follows one rollout's changes and renders them.
type watcher struct {
	sys      *system
	name     string
	out      io.Writer
	json     bool
	terminal bool
	width    int

	sawActive bool
	events    int            // events received, over every connection
	drawn     int            // lines of the live view on screen
	recent    []server.Event // the latest events, for the live view
	last      string         // the last status line printed (plain mode)
	checks    string         // the last checks printed (plain mode)
	result    error
}

// watchStatus follows a rollout through /api/v1/watch until its run ends,
// reconnecting when the connection drops.
func watchStatus(cmd *cobra.Command, sys *system, c *client, name, out string) error {
	w := &watcher{sys: sys, name: name, out: cmd.OutOrStdout(), json: out == outJSON}
	w.terminal, w.width = sys.terminal(w.out)
	ctx := cmd.Context()
	for attempt := 0; ; attempt++ {
		seen := w.events
		err := c.stream(ctx, "/api/v1/watch?name="+name, w.handle)
		if w.events > seen {
			attempt = 0 // the stream worked: count failures in a row only
		}
		switch {
		case errors.Is(err, errRunEnded):
			return w.result
		case ctx.Err() != nil:
			return nil // interrupted: the run goes on
		}
		var ae *apiError
		if errors.As(err, &ae) || attempt >= 5 {
			return err
		}
		if err == nil {
			err = errors.New("the server closed the stream")
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "aviary: lost the connection to %s (%v); reconnecting\n", c.base, err)
		select {
		case <-time.After(time.Duration(attempt+1) * time.Second):
		case <-ctx.Done():
			return nil
		}
	}
}

// stream reads server-sent events from path and hands each to fn until fn
// fails, the stream ends (nil) or ctx ends.
func (c *client) stream(ctx context.Context, path string, fn func(typ string, data []byte) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(path), nil)
	if err != nil {
		return err
	}
	c.authorize(req)
	req.Header.Set("Accept", "text/event-stream")
	res, err := c.http.Do(req)
	if err != nil {
		return c.connError(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		return c.errorOf(res, data)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var typ string
	var data []byte
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if typ != "" {
				if err := fn(typ, data); err != nil {
					return err
				}
			}
			typ, data = "", nil
		case strings.HasPrefix(line, "event:"):
			typ = strings.TrimSpace(line[len("event:"):])
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(line[len("data:"):], " ")...)
		}
	}
	return sc.Err()
}

// handle renders one event; it returns errRunEnded when the run is over.
func (w *watcher) handle(typ string, data []byte) error {
	w.events++
	switch typ {
	case server.EventDeleted:
		w.result = fmt.Errorf("rollout %s was deleted", w.name)
		return errRunEnded
	case server.EventRollout:
	default:
		return nil // resync and future event types
	}
	var c server.RolloutChange
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("read a change of %s: %w", w.name, err)
	}
	st := c.Rollout
	if err := w.render(c); err != nil {
		return err
	}
	if st.Phase.Active() {
		w.sawActive = true
		return nil
	}
	if st.Phase == rollout.PhaseFailed || (w.sawActive && st.Phase != rollout.PhaseSucceeded) {
		w.result = runFailed{name: st.Name, phase: st.Phase, msg: st.Message}
	}
	return errRunEnded
}

func (w *watcher) render(c server.RolloutChange) error {
	switch {
	case w.json:
		b, err := json.Marshal(c.Rollout)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w.out, "%s\n", b)
		return err
	case w.terminal:
		w.recent = append(w.recent, c.Events...)
		if n := len(w.recent); n > recentEvents {
			w.recent = w.recent[n-recentEvents:]
		}
		return w.redraw(c.Rollout)
	}
	return w.lines(c)
}

// recentEvents is how many events the live view shows.
const recentEvents = 5

// redraw replaces the live view on the terminal with the new status and
// the latest events.
func (w *watcher) redraw(st server.Status) error {
	var b strings.Builder
	if w.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA\x1b[J", w.drawn)
	}
	lines := statusLines(w.sys, st)
	if len(w.recent) > 0 {
		lines = append(lines, "  events")
		for _, e := range w.recent {
			lines = append(lines, fmt.Sprintf("    %s  %-14s %s", e.Time.In(w.sys.loc).Format("15:04:05"), e.Type, oneLine(e.Reason)))
		}
	}
	for _, l := range lines {
		b.WriteString(truncate(l, w.width-1) + "\n")
	}
	w.drawn = len(lines)
	_, err := io.WriteString(w.out, b.String())
	return err
}

// truncate cuts s to width runes, so that lines never wrap and the redraw
// moves up exactly the lines it drew.
func truncate(s string, width int) string {
	if width <= 0 {
		return s
	}
	r := []rune(s)
	if len(r) <= width {
		return s
	}
	return string(r[:width-1]) + "…"
}

// lines prints a change as plain lines: a status line when the phase, step
// or weight changed, the checks when they changed, and each event.
func (w *watcher) lines(c server.RolloutChange) error {
	st := c.Rollout
	var b strings.Builder
	head := fmt.Sprintf("rollout %s: %s%s", st.Name, st.Phase, runText(st))
	if st.Phase.Active() {
		head += fmt.Sprintf(", step %d/%d, weight %d%%", st.Step, st.Steps, st.CanaryWeight)
	}
	if head != w.last {
		b.WriteString(head + "\n")
		w.last = head
	}
	checks, _ := json.Marshal(st.Checks)
	if len(st.Checks) > 0 && string(checks) != w.checks {
		for _, ch := range st.Checks {
			fmt.Fprintf(&b, "%s  %-14s %s %s: %s\n", clock(w.sys, st.UpdatedAt), "Check", ch.Metric, ch.Verdict, oneLine(ch.Reason))
		}
	}
	w.checks = string(checks)
	for _, e := range c.Events {
		fmt.Fprintf(&b, "%s  %-14s %s\n", clock(w.sys, e.Time), e.Type, oneLine(e.Reason))
	}
	_, err := io.WriteString(w.out, b.String())
	return err
}
