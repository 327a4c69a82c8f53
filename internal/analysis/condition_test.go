package analysis

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestJudgeCondition(t *testing.T) {
	m := func(v float64, count int64) Measurement {
		return Measurement{Value: v, HasValue: true, Count: count}
	}
	cond := "canary.value >= stable.value * 0.98 && canary.count > 100"
	cases := []struct {
		name    string
		cond    string
		can, st Measurement
		want    Verdict
		reason  string
	}{
		{"holds", cond, m(0.97, 500), m(0.975, 9000), Pass,
			`condition "canary.value >= stable.value * 0.98 && canary.count > 100" holds with canary 0.97 (count 500), stable 0.975 (count 9,000)`},
		{"value too low", cond, m(0.90, 500), m(0.975, 9000), Fail, "is false with canary 0.9 (count 500), stable 0.975 (count 9,000)"},
		{"too few", cond, m(0.99, 50), m(0.975, 9000), Fail, "canary 0.99 (count 50)"},
		{"no canary data", cond, Measurement{Note: "Prometheus returned NaN"}, m(0.975, 9000), Inconclusive,
			"not evaluated: no canary data in the last interval (Prometheus returned NaN)"},
		{"no stable data", cond, m(0.97, 500), Measurement{}, Inconclusive, "no stable data"},
		{"stable not needed", "canary.value < 0.5", m(0.2, -1), Measurement{}, Pass, "holds with canary 0.2"},
		{"unknown count", "canary.count > 0", m(0.2, -1), Measurement{}, Fail, "canary 0.2"},
		{"requests", "canary.errors / canary.requests < 0.01", Measurement{Value: 1, HasValue: true, Requests: 1000, Errors: 20}, Measurement{}, Fail, "is false"},
		{"runtime error", "[1, 2][int(canary.value)] > 0", m(5, 1), Measurement{}, Error, "could not be evaluated with canary 5 (count 1)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cr := Criteria{Condition: c.cond}
			if ps := cr.Validate(); len(ps) > 0 {
				t.Fatalf("Validate: %v", ps)
			}
			r := Judge("kpi", cr, []Interval{{Canary: c.can, Stable: c.st}})
			if r.Verdict != c.want || !strings.Contains(r.Reason, c.reason) {
				t.Fatalf("got %s %q, want %s containing %q", r.Verdict, r.Reason, c.want, c.reason)
			}
			if !strings.HasPrefix(r.Reason, "kpi: ") {
				t.Errorf("reason %q does not name the metric", r.Reason)
			}
		})
	}
}

// Only the latest interval counts, and a failed measurement is Error.
func TestJudgeConditionSeries(t *testing.T) {
	cr := Criteria{Condition: "canary.value < 1"}
	old := Interval{Canary: Measurement{Value: 5, HasValue: true}}
	now := Interval{Canary: Measurement{Value: 0.5, HasValue: true}}
	if r := Judge("x", cr, []Interval{old, now}); r.Verdict != Pass {
		t.Fatalf("got %s %q, want Pass", r.Verdict, r.Reason)
	}
	failed := Interval{Canary: Measurement{Err: "connection refused"}}
	if r := Judge("x", cr, []Interval{now, failed}); r.Verdict != Error || !strings.Contains(r.Reason, "connection refused") {
		t.Fatalf("got %s %q, want Error naming the failure", r.Verdict, r.Reason)
	}
	inf := Interval{Canary: Measurement{Value: math.Inf(1), HasValue: true}}
	if r := Judge("x", cr, []Interval{inf}); r.Verdict != Error {
		t.Fatalf("got %s %q, want Error for an infinite value", r.Verdict, r.Reason)
	}
}

func TestConditionValidate(t *testing.T) {
	cases := []struct {
		name  string
		c     Criteria
		field string
		msg   string
	}{
		{"syntax", Criteria{Condition: "canary.value >= "}, "condition", "line 1, column"},
		{"not bool", Criteria{Condition: "canary.value * 2"}, "condition", "expected bool"},
		{"unknown name", Criteria{Condition: "baseline.value > 1"}, "condition", "unknown name baseline"},
		{"unknown field", Criteria{Condition: "canary.p99 > 1"}, "condition", "p99"},
		{"clock", Criteria{Condition: "now() != nil"}, "condition", "now"},
		{"combined", Criteria{Condition: "canary.value > 1", Max: num(3)}, "max", "cannot be combined with a condition"},
		{"combined test", Criteria{Condition: "canary.value > 1", Test: TestSequential}, "test", "cannot be combined"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps := c.c.Validate()
			for _, p := range ps {
				if p.Field == c.field && strings.Contains(p.Message, c.msg) {
					return
				}
			}
			t.Fatalf("problems %v, want one at %s containing %q", ps, c.field, c.msg)
		})
	}
	err := CompileCondition("canary.value >\n  stable.value +")
	var ee *ExprError
	if !errors.As(err, &ee) || ee.Line != 2 {
		t.Fatalf("got %v, want an ExprError on line 2", err)
	}
}

func TestSelector(t *testing.T) {
	doc := map[string]any{
		"data": map[string]any{
			"rate":   0.25,
			"count":  float64(1200),
			"items":  []any{map[string]any{"n": 3.0}, map[string]any{"n": 4.0}},
			"gone":   nil,
			"label":  "fast",
			"odd.ke": 7.0,
		},
	}
	cases := []struct {
		sel  string
		want float64
		ok   bool
		err  string
	}{
		{"$.data.rate", 0.25, true, ""},
		{"$['data'][\"count\"]", 1200, true, ""},
		{"$.data.items[1].n", 4, true, ""},
		{"$.data.items[-1].n", 4, true, ""},
		{"$.data['odd.ke']", 7, true, ""},
		{"$.data.gone", 0, false, ""},
		{"body.data.rate * 100", 25, true, ""},
		{"sum(map(body.data.items, .n))", 7, true, ""},
		{"len(body.data.items)", 2, true, ""},
		{"body.data.gone", 0, false, ""},
		{"$.data.missing", 0, false, `$.data has no key "missing" (it has: count, gone, items, label, odd.ke, rate)`},
		{"$.data.items[5]", 0, false, "$.data.items has 2 elements, no index 5"},
		{"$.data.rate.x", 0, false, `$.data.rate is a float64, not an object with key "x"`},
		{"$.data.items.n", 0, false, `$.data.items is an array, not an object`},
		{"$.data.label", 0, false, `is the string "fast", not a number`},
		{"body.data.label + 'x'", 0, false, "not a number"},
	}
	for _, c := range cases {
		t.Run(c.sel, func(t *testing.T) {
			s, err := ParseSelector(c.sel)
			if err != nil {
				t.Fatal(err)
			}
			v, ok, err := s.Select(doc)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, %v, %v; want an error containing %q", v, ok, err, c.err)
				}
				return
			}
			if err != nil || ok != c.ok || v != c.want {
				t.Fatalf("got %v, %v, %v; want %v, %v", v, ok, err, c.want, c.ok)
			}
		})
	}
}

func TestParseSelectorErrors(t *testing.T) {
	cases := []struct{ sel, msg string }{
		{"", "empty"},
		{"$.", "at character 2: a key name must follow '.'"},
		{"$.a[", "unclosed '['"},
		{"$.a[*]", "filters and wildcards are not supported"},
		{"$a", "unknown name $a"},
		{"body.a +", "line 1, column"},
	}
	for _, c := range cases {
		if _, err := ParseSelector(c.sel); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("ParseSelector(%q) = %v, want an error containing %q", c.sel, err, c.msg)
		}
	}
}
