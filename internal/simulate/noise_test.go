package simulate

import (
	"testing"
	"time"

	"aviary/internal/analysis"
)

func TestNoise(t *testing.T) {
	base := Scenario{Traffic: Traffic{RPS: 100}}
	shared := base
	shared.Noise = &Noise{Spread: 0.5, Bursts: 0.2, BurstFactor: 4}
	indep := shared
	n := *shared.Noise
	n.Independent = true
	indep.Noise = &n
	w0 := &world{sc: base, seed: 3, t0: Epoch}
	ws := &world{sc: shared, seed: 3, t0: Epoch}
	wi := &world{sc: indep, seed: 3, t0: Epoch}
	var bursts, differ int
	for m := range 200 {
		at := Epoch.Add(time.Duration(m) * time.Minute)
		if c, s := w0.noise(at); c != 1 || s != 1 {
			t.Fatalf("no noise gave factors %g, %g", c, s)
		}
		c, s := ws.noise(at)
		if c != s {
			t.Fatalf("minute %d: shared noise gave %g and %g", m, c, s)
		}
		if c2, _ := ws.noise(at.Add(59 * time.Second)); c2 != c {
			t.Fatalf("minute %d: the factor changed within the period", m)
		}
		if c > 1.5 {
			bursts++
		} else if c < 0.5 {
			t.Fatalf("factor %g below 1 - spread", c)
		}
		ic, is := wi.noise(at)
		if is != s {
			t.Fatalf("the stable's factor depends on independence: %g vs %g", is, s)
		}
		if ic != is {
			differ++
		}
	}
	if bursts < 20 || bursts > 60 {
		t.Errorf("%d bursts in 200 minutes, want about 40", bursts)
	}
	if differ < 190 {
		t.Errorf("independent factors differed in %d of 200 minutes", differ)
	}
}

// Noise changes the errors drawn, not the requests: each second's traffic
// comes from its own stream.
func TestNoiseKeepsTraffic(t *testing.T) {
	rate := analysis.Number(0.01)
	sc := Scenario{Traffic: Traffic{RPS: 200}, Stable: Behaviour{ErrorRate: &rate}, Canary: Behaviour{ErrorRate: &rate}}
	noisy := sc
	noisy.Noise = &Noise{Spread: 0.9}
	a := &world{sc: sc, seed: 9, t0: Epoch}
	b := &world{sc: noisy, seed: 9, t0: Epoch}
	a.route(Epoch, 10, true)
	b.route(Epoch, 10, true)
	wa := a.measure(Epoch, Epoch.Add(10*time.Minute), false)
	wb := b.measure(Epoch, Epoch.Add(10*time.Minute), false)
	if wa.canary.requests != wb.canary.requests || wa.stable.requests != wb.stable.requests {
		t.Fatalf("requests changed with noise: %d/%d vs %d/%d", wa.canary.requests, wa.stable.requests, wb.canary.requests, wb.stable.requests)
	}
	if wa.stable.errors == wb.stable.errors {
		t.Fatalf("noise did not change the errors (%d)", wa.stable.errors)
	}
	// Counting what was served draws the same counts as measuring.
	sa := a.measure(Epoch, Epoch.Add(10*time.Minute), true)
	if sa.canary.requests != wa.canary.requests || sa.canary.errors != wa.canary.errors {
		t.Fatalf("served counts %d/%d differ from measured %d/%d", sa.canary.requests, sa.canary.errors, wa.canary.requests, wa.canary.errors)
	}
}
