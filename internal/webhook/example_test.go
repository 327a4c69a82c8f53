package webhook_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"aviary/internal/webhook"
)

// A receiver checks every call's signature before it trusts the payload.
func ExampleVerify() {
	secret := []byte("a-shared-secret-of-16+-bytes")
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "cannot read the body", http.StatusBadRequest)
			return
		}
		err = webhook.Verify(secret, r.Header.Get(webhook.HeaderTimestamp), r.Header.Get(webhook.HeaderSignature),
			body, time.Now(), webhook.DefaultTolerance)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var p webhook.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, "bad payload", http.StatusBadRequest)
			return
		}
		fmt.Printf("%s asks about %s %s at %d%%\n", p.Type, p.Rollout, p.CanaryVersion, p.Weight)
		w.WriteHeader(http.StatusOK) // go ahead
	})

	// What aviary sends, signed at ts.
	body := []byte(`{"schema":"aviary.dev/webhook/v1","type":"confirm-promotion","hook":"ship","key":"1/s4/ship","rollout":"web","run":1,"phase":"Progressing","weight":50,"canaryVersion":"v2","stableVersion":"v1","metadata":{}}`)
	ts := fmt.Sprint(time.Now().Unix())
	req := httptest.NewRequest(http.MethodPost, "/ship", strings.NewReader(string(body)))
	req.Header.Set(webhook.HeaderTimestamp, ts)
	req.Header.Set(webhook.HeaderSignature, webhook.Sign(secret, ts, body))
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Println(rec.Code)

	// The same call with a changed body is refused.
	req = httptest.NewRequest(http.MethodPost, "/ship", strings.NewReader(strings.Replace(string(body), "50", "100", 1)))
	req.Header.Set(webhook.HeaderTimestamp, ts)
	req.Header.Set(webhook.HeaderSignature, webhook.Sign(secret, ts, body))
	rec = httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Println(rec.Code, strings.TrimSpace(rec.Body.String()))
	// Output:
	// confirm-promotion asks about web v2 at 50%
	// 200
	// 401 signature does not match
}
