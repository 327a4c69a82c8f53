package analysis

// Tracker judges one metric as its series grows: Add appends the latest
// interval and returns what Judge returns for the whole series so far, but
// keeps the sequential test's state between calls, so that judging a run of
// n intervals takes time proportional to n rather than n². Simulations use
// it; a server that restarts rebuilds one by adding the stored series.
//
// A Tracker is not safe for concurrent use.
type Tracker struct {
	metric string
	c      Criteria
	valid  bool
	seq    *seqJudge
}

// NewTracker returns a Tracker of metric judged by c.
func NewTracker(metric string, c Criteria) *Tracker {
	t := &Tracker{metric: metric, c: c, valid: len(c.Validate()) == 0}
	if t.valid && c.Condition == "" && c.Test == TestSequential {
		t.seq = newSeqJudge(c)
	}
	return t
}

// Add appends iv and judges the series so far.
func (t *Tracker) Add(iv Interval) Result {
	if t.seq == nil {
		// Every other check judges the latest interval alone.
		return Judge(t.metric, t.c, []Interval{iv})
	}
	failure := t.seq.add(iv)
	r := Result{Metric: t.metric, CanaryCount: -1, Test: t.c.Test}
	if msg := measurementFailure(iv, t.c); msg != "" {
		r.Verdict = Error
		r.Reason = t.metric + ": " + msg
		return r
	}
	return t.seq.judge(r, failure)
}
