package rollout

import "fmt"

// hooksOf lists the spec's webhooks of one type.
func (m *machine) hooksOf(typ string) []Webhook {
	var out []Webhook
	for _, h := range m.spec.Webhooks {
		if h.Type == typ {
			out = append(out, h)
		}
	}
	return out
}

// call emits a call of hook h identified by key and records it.
func (m *machine) call(h Webhook, key string) {
	hs := m.st.hook(h.Name)
	if hs.Key != key {
		*hs = HookStatus{Name: h.Name, Key: key}
	}
	hs.CalledAt = m.now
	hs.Attempts++
	version := ""
	if m.st.Canary != nil {
		version = m.st.Canary.Version
	}
	m.emit(CallHook{Name: h.Name, Type: h.Type, Key: key, Run: m.st.Run, Phase: m.st.Phase, Version: version, Weight: m.st.Weight})
}

// callHooks calls every hook of a type once, without awaiting answers.
func (m *machine) callHooks(typ, stage string) {
	for _, h := range m.hooksOf(typ) {
		m.call(h, m.key(stage, h.Name))
	}
}

func (m *machine) key(stage, name string) string {
	return fmt.Sprintf("%d/%s/%s", m.st.Run, stage, name)
}

// confirm passes when every hook of a confirm-* type has answered 2xx for
// this stage of the run (or a person passed the gate). Until then it calls
// the unanswered hooks again every interval and records the wait.
func (m *machine) confirm(typ, stage string) bool {
	if m.st.Approved {
		return true
	}
	waitingOn := ""
	for _, h := range m.hooksOf(typ) {
		key := m.key(stage, h.Name)
		hs := m.st.hook(h.Name)
		if hs.Key == key && hs.Passed {
			continue
		}
		if waitingOn == "" {
			waitingOn = h.Name
		}
		if hs.Key != key || !m.now.Before(hs.CalledAt.Add(m.spec.Analysis.Interval.D())) {
			m.call(h, key)
		}
	}
	if waitingOn == "" {
		return true
	}
	m.wait(WaitWebhook, waitingOn, "waiting for webhook %s (%s) to confirm at step %s", waitingOn, typ, m.stepOf())
	return false
}

// preRollout calls the pre-rollout hooks once at weight 0; a failure counts
// as a failed check and the hook is called again next interval.
func (m *machine) preRollout() bool {
	waitingOn := ""
	for _, h := range m.hooksOf(HookPreRollout) {
		key := m.key("pre", h.Name)
		hs := m.st.hook(h.Name)
		if hs.Key == key && hs.Passed {
			continue
		}
		if waitingOn == "" {
			waitingOn = h.Name
		}
		if hs.Key != key || !m.now.Before(hs.CalledAt.Add(m.spec.Analysis.Interval.D())) {
			m.call(h, key)
		}
	}
	if waitingOn == "" {
		return true
	}
	m.wait(WaitWebhook, waitingOn, "waiting for pre-rollout webhook %s at weight 0%%", waitingOn)
	return false
}

// hookResult takes a webhook's answer.
func (m *machine) hookResult(r HookResult) {
	hs := m.st.hook(r.Name)
	if hs.Key != r.Key || hs.Passed || !m.st.Phase.Active() {
		return // stale, or an answer to a fire-and-forget call
	}
	hs.Message = r.Message
	typ := ""
	for _, h := range m.spec.Webhooks {
		if h.Name == r.Name {
			typ = h.Type
		}
	}
	switch typ {
	case HookConfirmRollout, HookConfirmTrafficIncrease, HookConfirmPromotion:
		hs.Passed = r.OK
	case HookPreRollout, HookRollout:
		hs.Passed = r.OK
		if !r.OK {
			m.failed(fmt.Sprintf("%s webhook %s failed%s", typ, r.Name, prefixed(": ", r.Message)))
		}
	case HookRollback:
		hs.Passed = true
		if r.OK {
			m.rollback("webhook %s asked for it%s", r.Name, prefixed(": ", r.Message))
		}
	}
}
