package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"aviary/internal/rollout"
)

// Notification types.
const (
	TypeSlack      = "slack"
	TypeTeams      = "teams"
	TypeDiscord    = "discord"
	TypeGoogleChat = "googlechat"
	TypeWebhook    = "webhook"
)

// maxReason bounds the reason quoted in chat messages, in bytes; chat
// services refuse longer texts (Discord: 4096 characters per embed text).
const maxReason = 2000

// content is what every format shows.
type content struct {
	Rollout  string
	Version  string
	Run      int
	Event    string
	Severity string
	Phase    string
	Weight   int
	Step     int
	Reason   string
	Time     time.Time
}

// headline is the message's first line: "[warn] web v2: Paused".
func (c content) headline() string {
	return fmt.Sprintf("[%s] %s %s: %s", c.Severity, c.Rollout, c.Version, c.Event)
}

// facts is the line under the reason: "phase Paused · weight 25% · run 3".
func (c content) facts() string {
	return fmt.Sprintf("phase %s · weight %d%% · run %d", c.Phase, c.Weight, c.Run)
}

func (d *Dispatcher) content(m Message) content {
	e := m.Event
	sev := e.Severity
	if sev == "" {
		sev = rollout.SeverityInfo
	}
	return content{Rollout: m.Rollout, Version: m.Version, Run: e.Run, Event: e.Type, Severity: sev,
		Phase: string(e.Phase), Weight: e.Weight, Step: e.Step, Reason: clip(d.secrets.Redactor.String(e.Reason), maxReason),
		Time: e.Time.UTC()}
}

// clip shortens s to at most n bytes, at a character boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

type formatter func(content) ([]byte, error)

func formatFor(typ string) (formatter, error) {
	switch typ {
	case TypeSlack:
		return slack, nil
	case TypeTeams:
		return teams, nil
	case TypeDiscord:
		return discord, nil
	case TypeGoogleChat:
		return googleChat, nil
	case TypeWebhook:
		return generic, nil
	}
	return nil, fmt.Errorf("unknown notification type %q (want one of slack, teams, discord, googlechat, webhook)", typ)
}

// encode writes v as JSON without escaping <, > and &.
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

type obj = map[string]any

// slack is an incoming-webhook message: text for notifications and a
// Block Kit rendering.
func slack(c content) ([]byte, error) {
	esc := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace
	return encode(obj{
		"text": esc(c.headline() + ": " + c.Reason),
		"blocks": []obj{
			{"type": "section", "text": obj{"type": "mrkdwn", "text": "*" + esc(c.headline()) + "*\n" + esc(c.Reason)}},
			{"type": "context", "elements": []obj{{"type": "mrkdwn", "text": esc(c.facts())}}},
		},
	})
}

// teams is an Adaptive Card for a Teams Workflows incoming webhook.
func teams(c content) ([]byte, error) {
	color := map[string]string{rollout.SeverityWarn: "Warning", rollout.SeverityError: "Attention"}[c.Severity]
	if color == "" {
		color = "Default"
	}
	return encode(obj{
		"type": "message",
		"attachments": []obj{{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"contentUrl":  nil,
			"content": obj{
				"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
				"type":    "AdaptiveCard",
				"version": "1.4",
				"body": []obj{
					{"type": "TextBlock", "text": c.headline(), "weight": "Bolder", "size": "Medium", "color": color, "wrap": true},
					{"type": "TextBlock", "text": c.Reason, "wrap": true},
					{"type": "FactSet", "facts": []obj{
						{"title": "Rollout", "value": c.Rollout},
						{"title": "Version", "value": c.Version},
						{"title": "Phase", "value": c.Phase},
						{"title": "Weight", "value": fmt.Sprintf("%d%%", c.Weight)},
						{"title": "Run", "value": fmt.Sprint(c.Run)},
					}},
				},
			},
		}},
	})
}

// discord is a webhook message with one embed; mentions in the text never
// ping anyone.
func discord(c content) ([]byte, error) {
	color := map[string]int{rollout.SeverityInfo: 0x3b82f6, rollout.SeverityWarn: 0xf59e0b, rollout.SeverityError: 0xdc2626}[c.Severity]
	return encode(obj{
		"username": "aviary",
		"embeds": []obj{{
			"title":       clip(c.headline(), 256),
			"description": c.Reason,
			"color":       color,
			"fields": []obj{
				{"name": "Rollout", "value": c.Rollout, "inline": true},
				{"name": "Version", "value": c.Version, "inline": true},
				{"name": "Phase", "value": c.Phase, "inline": true},
				{"name": "Weight", "value": fmt.Sprintf("%d%%", c.Weight), "inline": true},
				{"name": "Run", "value": fmt.Sprint(c.Run), "inline": true},
			},
			"timestamp": c.Time.Format(time.RFC3339),
		}},
		"allowed_mentions": obj{"parse": []string{}},
	})
}

// googleChat is a text message.
func googleChat(c content) ([]byte, error) {
	return encode(obj{"text": "*" + c.headline() + "*\n" + c.Reason + "\n" + c.facts()})
}

// GenericSchema names GenericPayload's shape.
const GenericSchema = "aviary.dev/notification/v1"

// GenericPayload is what a generic webhook channel receives: the event and
// the rollout it is about. Fields are only ever added.
type GenericPayload struct {
	Schema   string    `json:"schema"`
	Rollout  string    `json:"rollout"`
	Version  string    `json:"version"`
	Run      int       `json:"run"`
	Event    string    `json:"event"`
	Severity string    `json:"severity"`
	Phase    string    `json:"phase"`
	Weight   int       `json:"weight"`
	Step     int       `json:"step"`
	Reason   string    `json:"reason"`
	Time     time.Time `json:"time"`
}

func generic(c content) ([]byte, error) {
	return encode(GenericPayload{Schema: GenericSchema, Rollout: c.Rollout, Version: c.Version, Run: c.Run,
		Event: c.Event, Severity: c.Severity, Phase: c.Phase, Weight: c.Weight, Step: c.Step, Reason: c.Reason, Time: c.Time})
}
