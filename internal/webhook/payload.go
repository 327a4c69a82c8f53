package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schema names the payload's shape.
const Schema = "aviary.dev/webhook/v1"

// Headers of a call.
const (
	HeaderSignature = "X-Aviary-Signature"
	HeaderTimestamp = "X-Aviary-Timestamp"
	HeaderAttempt   = "X-Aviary-Attempt"
)

// MinSecretLen is the shortest signing secret accepted, in bytes.
const MinSecretLen = 16

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock before Verify refuses it.
const DefaultTolerance = 5 * time.Minute

// Payload is the JSON body of every call. See the package documentation.
type Payload struct {
	Schema        string            `json:"schema"`
	Type          string            `json:"type"`
	Hook          string            `json:"hook"`
	Key           string            `json:"key"`
	Rollout       string            `json:"rollout"`
	Run           int               `json:"run"`
	Phase         string            `json:"phase"`
	Weight        int               `json:"weight"`
	CanaryVersion string            `json:"canaryVersion"`
	StableVersion string            `json:"stableVersion"`
	Metadata      map[string]string `json:"metadata"`
	Event         *Event            `json:"event,omitempty"`
}

// Event is the event an event hook is told about.
type Event struct {
	Time     time.Time `json:"time"`
	Type     string    `json:"type"`
	Severity string    `json:"severity"`
	Phase    string    `json:"phase"`
	Weight   int       `json:"weight"`
	Step     int       `json:"step"`
	Reason   string    `json:"reason"`
}

// NewPayload builds the payload of a request.
func NewPayload(r Request) Payload {
	p := Payload{
		Schema:        Schema,
		Type:          r.Hook.Type,
		Hook:          r.Hook.Name,
		Key:           r.Call.Key,
		Rollout:       r.Rollout,
		Run:           r.Call.Run,
		Phase:         string(r.Call.Phase),
		Weight:        r.Call.Weight,
		CanaryVersion: r.Canary,
		StableVersion: r.Stable,
		Metadata:      map[string]string{},
	}
	if p.CanaryVersion == "" {
		p.CanaryVersion = r.Call.Version
	}
	for k, v := range r.Hook.Metadata {
		p.Metadata[k] = v
	}
	if e := r.Event; e != nil {
		p.Event = &Event{Time: e.Time.UTC(), Type: e.Type, Severity: e.Severity, Phase: string(e.Phase),
			Weight: e.Weight, Step: e.Step, Reason: e.Reason}
	}
	return p
}

// Sign returns the X-Aviary-Signature value for body sent at timestamp (the
// X-Aviary-Timestamp value).
func Sign(secret []byte, timestamp string, body []byte) string {
	return "sha256=" + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a call as a receiver gets it: timestamp and signature are
// the X-Aviary-Timestamp and X-Aviary-Signature header values, body the
// exact bytes received. It refuses a timestamp further than tolerance from
// now in either direction (use DefaultTolerance), so an old call cannot be
// replayed. It depends on the standard library only, so receivers may copy
// it.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	if signature == "" {
		return ErrNoSignature
	}
	h, ok := strings.CutPrefix(signature, "sha256=")
	if !ok {
		return fmt.Errorf("%w: want sha256=<hex>", ErrBadSignature)
	}
	got, err := hex.DecodeString(h)
	if err != nil {
		return fmt.Errorf("%w: not hex", ErrBadSignature)
	}
	if !hmac.Equal(got, mac(secret, timestamp, body)) {
		return ErrBadSignature
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w %q: want Unix seconds", ErrBadTimestamp, timestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed %s ago, tolerance %s", ErrStale, d.Round(time.Second), tolerance)
	}
	return nil
}
