// Package remote is the built-in provider of a server whose proxies run as
// their own process: it asks the data plane's admin endpoint for the
// measurements the proxies took. It imports only the core.
package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"aviary/internal/analysis"
	"aviary/internal/rollout"
)

// Provider queries a data plane. Safe for concurrent use.
type Provider struct {
	admin  string
	client *http.Client
}

// New returns a Provider for the data plane at admin (its admin URL);
// client nil means one with a 10s timeout.
func New(admin string, client *http.Client) *Provider {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Provider{admin: strings.TrimSuffix(admin, "/"), client: client}
}

// Query asks the data plane for one version's measurements over a window.
func (p *Provider) Query(ctx context.Context, q rollout.Query) (analysis.Measurement, error) {
	body, err := json.Marshal(q)
	if err != nil {
		return analysis.Measurement{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.admin+"/api/v1/measure", bytes.NewReader(body))
	if err != nil {
		return analysis.Measurement{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := p.client.Do(req)
	if err != nil {
		return analysis.Measurement{}, fmt.Errorf("data plane at %s: %w", p.admin, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return analysis.Measurement{}, fmt.Errorf("data plane at %s: %w", p.admin, err)
	}
	if res.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return analysis.Measurement{}, fmt.Errorf("data plane: %s", e.Error)
		}
		return analysis.Measurement{}, fmt.Errorf("data plane at %s answered %s", p.admin, res.Status)
	}
	var m analysis.Measurement
	if err := json.Unmarshal(data, &m); err != nil {
		return analysis.Measurement{}, fmt.Errorf("data plane's measurement: %w", err)
	}
	return m, nil
}
