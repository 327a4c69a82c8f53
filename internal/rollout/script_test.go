package rollout

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"aviary/internal/analysis"
	"sigs.k8s.io/yaml"
)

// The state machine's behaviour is written as small scripts in
// testdata/scenarios; see testdata/scenarios/README.md for the language.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/scenarios/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenarios found")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			runScript(t, f, string(b))
		})
	}
}

var scriptEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type script struct {
	t       *testing.T
	file    string
	line    int
	spec    Spec
	st      Status
	now     time.Time
	applied int64
	ack     bool
	last    []Action
	lastSet bool
}

func runScript(t *testing.T, file, text string) {
	s := &script{t: t, file: file, now: scriptEpoch, ack: true}
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		s.line = i + 1
		raw := lines[i]
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if line == "spec" {
			var body []string
			for i+1 < len(lines) && (strings.HasPrefix(lines[i+1], "  ") || strings.TrimSpace(lines[i+1]) == "") {
				i++
				body = append(body, strings.TrimPrefix(lines[i], "  "))
			}
			s.loadSpec(strings.Join(body, "\n"))
			continue
		}
		s.do(splitArgs(line))
	}
}

func (s *script) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("%s:%d: %s", s.file, s.line, fmt.Sprintf(format, args...))
}

func (s *script) loadSpec(text string) {
	var m Manifest
	if err := yaml.UnmarshalStrict([]byte(text), &m); err != nil {
		s.fatalf("spec: %v", err)
	}
	if errs := m.Validate(); len(errs) > 0 {
		s.fatalf("spec is invalid:\n%v", errs)
	}
	s.spec = m.Normalize().Spec
}

// next calls Next and keeps its actions for the expectations that follow.
func (s *script) next(obs Observations) {
	if s.ack {
		obs.Applied = s.applied
	}
	st, actions := Next(s.now, s.spec, s.st, obs)
	s.st = st
	if !s.lastSet {
		s.last = nil
	}
	s.last = append(s.last, actions...)
	if !st.WakeAt.IsZero() && !st.WakeAt.After(s.now) {
		s.fatalf("WakeAt %s is not after now %s", st.WakeAt, s.now)
	}
	for _, a := range actions {
		if r, ok := a.(SetRoute); ok && s.ack {
			s.applied = r.Route.Generation
		}
	}
}

func (s *script) do(args []string) {
	s.t.Helper()
	verb, rest := args[0], args[1:]
	switch verb {
	case "at":
		d := s.duration(rest[0])
		if t := scriptEpoch.Add(d); t.Before(s.now) {
			s.fatalf("time goes backwards: at %s", rest[0])
		} else {
			s.now = t
		}
	case "tick":
		s.next(Observations{})
	case "release":
		s.spec.Version = rest[0]
		s.spec.Upstreams = []string{"http://" + rest[0] + ".internal:80"}
		if len(rest) > 1 {
			s.spec.Upstreams = rest[1:]
		}
		s.next(Observations{})
	case "checks":
		s.next(Observations{Checks: s.results(rest)})
	case "hook":
		s.next(Observations{Hooks: []HookResult{s.hookResult(rest)}})
	case "promote", "abort", "pause", "resume", "retry", "rollback", "approve":
		c := Command{Op: verb}
		for _, a := range rest {
			if a == "--full" {
				c.Full = true
			} else {
				c.Gate = a
			}
		}
		s.next(Observations{Commands: []Command{c}})
	case "router":
		s.ack = rest[0] == "up"
	case "restart":
		s.restart()
	case "run":
		s.runUntil(rest)
	case "expect":
		s.expect(rest)
	default:
		s.fatalf("unknown verb %q", verb)
	}
}

func (s *script) duration(v string) time.Duration {
	d, err := time.ParseDuration(v)
	if err != nil {
		s.fatalf("bad duration %q", v)
	}
	return d
}

// results answers the pending interval: "error-rate=Pass latency=Fail".
func (s *script) results(args []string) *CheckResults {
	cr := &CheckResults{Run: s.st.Run, Interval: s.st.Analysis.Interval}
	for _, a := range args {
		name, v, ok := strings.Cut(a, "=")
		verdict, err := analysis.ParseVerdict(v)
		if !ok || err != nil {
			s.fatalf("bad check result %q: want NAME=Pass|Fail|Inconclusive|Error", a)
		}
		cr.Results = append(cr.Results, analysis.Result{
			Metric: name, Verdict: verdict, CanaryCount: -1,
			Reason: fmt.Sprintf("%s: %s in interval %d", name, verdict, cr.Interval),
		})
	}
	return cr
}

// hookResult answers the latest call of a hook: "smoke ok" or "smoke fail 503".
func (s *script) hookResult(args []string) HookResult {
	if len(args) < 2 || (args[1] != "ok" && args[1] != "fail") {
		s.fatalf("want: hook NAME ok|fail [message]")
	}
	for _, h := range s.st.Hooks {
		if h.Name == args[0] {
			return HookResult{Name: h.Name, Key: h.Key, OK: args[1] == "ok", Message: strings.Join(args[2:], " ")}
		}
	}
	s.fatalf("hook %s was never called", args[0])
	return HookResult{}
}

// restart round-trips the status through JSON, as a restarted shell would
// load it from its store.
func (s *script) restart() {
	b, err := json.Marshal(s.st)
	if err != nil {
		s.fatalf("marshal status: %v", err)
	}
	var st Status
	if err := json.Unmarshal(b, &st); err != nil {
		s.fatalf("unmarshal status: %v", err)
	}
	b2, _ := json.Marshal(st)
	if string(b) != string(b2) {
		s.fatalf("status does not round-trip through JSON:\n%s\n%s", b, b2)
	}
	s.st = st
}

// runUntil calls Next at every wake-up until a time, answering every
// interval's checks with the given verdicts: "run until 5m error-rate=Pass".
func (s *script) runUntil(args []string) {
	if len(args) < 2 || args[0] != "until" {
		s.fatalf("want: run until DURATION [NAME=VERDICT...]")
	}
	end := scriptEpoch.Add(s.duration(args[1]))
	s.last, s.lastSet = nil, true
	defer func() { s.lastSet = false }()
	for range 100000 {
		w := s.st.WakeAt
		if w.IsZero() || w.After(end) {
			break
		}
		if w.After(s.now) {
			s.now = w
		}
		s.next(Observations{})
		if s.st.Analysis.Pending && len(args) > 2 && s.st.Analysis.RequestedAt.Equal(s.now) {
			s.next(Observations{Checks: s.results(args[2:])})
		}
	}
	s.now = end
}

func (s *script) expect(args []string) {
	s.t.Helper()
	if len(args) == 0 {
		s.fatalf("expect what?")
	}
	switch args[0] {
	case "action":
		if s.findAction(args[1], args[2:]) == nil {
			s.fatalf("no %s action matching %v; actions: %s", args[1], args[2:], s.describeActions())
		}
	case "event":
		if s.findEvent(args[1:]) == nil {
			s.fatalf("no event %v; actions: %s", args[1:], s.describeActions())
		}
	case "no":
		var found any
		if args[1] == "action" {
			found = s.findAction(args[2], args[3:])
		} else if args[1] == "event" {
			if e := s.findEvent(args[2:]); e != nil {
				found = e
			}
		} else {
			s.fatalf("expect no action|event ...")
		}
		if found != nil {
			s.fatalf("unexpected %v: %+v", args[1:], found)
		}
	case "refused":
		err := Allowed(s.now, s.spec, s.st, Command{Op: args[1]})
		if err == nil {
			s.fatalf("%s was allowed", args[1])
		}
		if len(args) > 2 && !strings.Contains(err.Error(), args[2]) {
			s.fatalf("%s refused with %q, want it to contain %q", args[1], err, args[2])
		}
	case "allowed":
		if err := Allowed(s.now, s.spec, s.st, Command{Op: args[1]}); err != nil {
			s.fatalf("%s refused: %v", args[1], err)
		}
	default:
		for _, kv := range args {
			s.expectField(kv)
		}
	}
}

func (s *script) expectField(kv string) {
	s.t.Helper()
	k, want, ok := strings.Cut(kv, "=")
	if !ok {
		s.fatalf("want KEY=VALUE, got %q", kv)
	}
	got := s.field(k)
	if got != want {
		s.fatalf("%s = %q, want %q (status message: %s)", k, got, want, s.st.Message)
	}
}

func (s *script) field(k string) string {
	st := s.st
	switch k {
	case "phase":
		return string(st.Phase)
	case "stable":
		return st.Stable.Version
	case "canary":
		if st.Canary == nil {
			return "none"
		}
		return st.Canary.Version
	case "weight":
		return strconv.Itoa(st.Weight)
	case "step":
		return strconv.Itoa(st.Step)
	case "run":
		return strconv.Itoa(st.Run)
	case "ready":
		return strconv.FormatBool(st.Ready)
	case "failures":
		return strconv.Itoa(st.Analysis.Failures)
	case "errors":
		return strconv.Itoa(st.Analysis.ConsecutiveErrors)
	case "interval":
		return strconv.Itoa(st.Analysis.Interval)
	case "pending":
		return strconv.FormatBool(st.Analysis.Pending)
	case "waiting":
		if st.Waiting == nil {
			return "none"
		}
		if st.Waiting.Name == "" {
			return st.Waiting.Kind
		}
		return st.Waiting.Kind + ":" + st.Waiting.Name
	case "pause":
		if st.Pause == nil {
			return "none"
		}
		return st.Pause.Cause
	case "wake":
		if st.WakeAt.IsZero() {
			return "none"
		}
		return formatDuration(st.WakeAt.Sub(scriptEpoch))
	case "previous":
		if st.Previous == nil {
			return "none"
		}
		return st.Previous.Version
	case "rejected":
		if st.Rejected == nil {
			return "none"
		}
		return st.Rejected.Version
	case "generation":
		return strconv.FormatInt(st.RouteGeneration, 10)
	case "message":
		return st.Message
	}
	s.fatalf("unknown status field %q", k)
	return ""
}

// findAction finds an action of a type whose fields match "k=v" filters.
func (s *script) findAction(typ string, filters []string) Action {
	for _, a := range s.last {
		fields, name := actionFields(a)
		if name != typ {
			continue
		}
		match := true
		for _, f := range filters {
			k, v, _ := strings.Cut(f, "=")
			if fields[k] != v {
				match = false
			}
		}
		if match {
			return a
		}
	}
	return nil
}

func actionFields(a Action) (map[string]string, string) {
	switch a := a.(type) {
	case SetRoute:
		r := a.Route
		canary := "none"
		if r.Canary != nil {
			canary = r.Canary.Version
		}
		return map[string]string{
			"weight": strconv.Itoa(r.Weight), "stable": r.Stable.Version, "canary": canary,
			"generation": strconv.FormatInt(r.Generation, 10), "match": strconv.Itoa(len(r.Match)),
			"mirror": strconv.FormatBool(r.Mirror != nil),
		}, "SetRoute"
	case RunChecks:
		return map[string]string{"interval": strconv.Itoa(a.Interval), "run": strconv.Itoa(a.Run),
			"window": formatDuration(a.End.Sub(a.Start))}, "RunChecks"
	case CallHook:
		return map[string]string{"name": a.Name, "type": a.Type, "key": a.Key, "weight": strconv.Itoa(a.Weight)}, "CallHook"
	case Finish:
		return map[string]string{"outcome": string(a.Outcome), "version": a.Version, "run": strconv.Itoa(a.Run)}, "Finish"
	case Notify:
		return map[string]string{"type": a.Event.Type, "severity": a.Event.Severity}, "Notify"
	}
	return nil, fmt.Sprintf("%T", a)
}

// findEvent finds an event of a type whose reason contains every given
// substring.
func (s *script) findEvent(args []string) *Event {
	for _, a := range s.last {
		n, ok := a.(Notify)
		if !ok || n.Event.Type != args[0] {
			continue
		}
		match := true
		for _, sub := range args[1:] {
			if k, v, ok := strings.Cut(sub, "="); ok && k == "severity" {
				match = match && n.Event.Severity == v
				continue
			}
			match = match && strings.Contains(n.Event.Reason, sub)
		}
		if match {
			return &n.Event
		}
	}
	return nil
}

func (s *script) describeActions() string {
	var b strings.Builder
	for _, a := range s.last {
		if n, ok := a.(Notify); ok {
			fmt.Fprintf(&b, "\n  event %s: %s", n.Event.Type, n.Event.Reason)
			continue
		}
		f, name := actionFields(a)
		fmt.Fprintf(&b, "\n  %s %v", name, f)
	}
	if b.Len() == 0 {
		return "(none)"
	}
	return b.String()
}

// splitArgs splits on spaces, keeping "double quoted" strings together.
func splitArgs(line string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range line {
		switch {
		case r == '"':
			quoted = !quoted
		case r == ' ' && !quoted:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}
