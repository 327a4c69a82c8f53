package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"aviary/internal/controller"
	"aviary/internal/loadtest"
	"aviary/internal/notify"
	"aviary/internal/rollout"
	"aviary/internal/secret"
	"aviary/internal/webhook"
)

// hookAdapter calls webhooks for the controller.
type hookAdapter struct{ c *webhook.Caller }

func (a hookAdapter) Call(ctx context.Context, hc controller.HookCall) rollout.HookResult {
	return a.c.Call(ctx, webhook.Request(hc))
}

// notifyAdapter sends the controller's notifications.
type notifyAdapter struct{ d *notify.Dispatcher }

func (a notifyAdapter) Notify(ctx context.Context, n controller.Notification) {
	a.d.Notify(ctx, notify.Message(n))
}

// loadAdapter runs load hooks for the controller.
type loadAdapter struct {
	g   *loadtest.Generator
	log *slog.Logger
}

func (a loadAdapter) Run(ctx context.Context, l controller.LoadRun) {
	if l.Hook.Load == nil {
		return
	}
	target, err := loadtest.TargetFor(*l.Hook.Load, l.Traffic, l.Canary, loadtest.Header{Name: l.ForceHeader, Value: l.ForceValue})
	if err != nil {
		a.log.Warn("load hook", "rollout", l.Rollout, "hook", l.Hook.Name, "err", err)
		return
	}
	run, err := a.g.Start(ctx, *l.Hook.Load, target, l.Duration)
	if err != nil {
		a.log.Warn("load hook", "rollout", l.Rollout, "hook", l.Hook.Name, "err", err)
		return
	}
	run.Wait()
	a.log.Info("load hook ran", "rollout", l.Rollout, "hook", l.Hook.Name, "status", run.Status())
}

// checkSecrets refuses a spec whose webhook secrets or notification URLs do
// not resolve, naming the field, before it is applied.
func checkSecrets(hooks *webhook.Caller, n *notify.Dispatcher) func(rollout.Spec) error {
	return func(s rollout.Spec) error {
		var errs rollout.FieldErrors
		for i, h := range s.Webhooks {
			if err := hooks.Check(h); err != nil {
				errs = append(errs, rollout.FieldError{Path: fmt.Sprintf("spec.webhooks[%d]", i), Message: err.Error()})
			}
		}
		if err := n.Check("spec.notify", s.Notify); err != nil {
			var se *secret.Error
			path := "spec.notify"
			if errors.As(err, &se) {
				path = se.Field
			}
			errs = append(errs, rollout.FieldError{Path: path, Message: err.Error()})
		}
		return errs.Err()
	}
}
