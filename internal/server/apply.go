package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"aviary/internal/manifest"
	"aviary/internal/rollout"
	"aviary/internal/store"
)

// Apply actions.
const (
	ActionCreated    = "created"
	ActionConfigured = "configured"
	ActionUnchanged  = "unchanged"
)

// apply creates or updates the rollouts of one or more manifests. Every
// document is decoded, validated and checked against this server's
// adapters before any is applied: one bad document applies none.
func (s *Server) apply(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return readError(err)
	}
	docs, err := decodeManifests(body, isJSON(r))
	if err != nil {
		return err
	}
	if err := s.check(docs); err != nil {
		return err
	}
	out := Applied{Results: make([]ApplyResult, 0, len(docs))}
	for _, d := range docs {
		res, err := s.opts.Controller.Apply(r.Context(), d.Manifest)
		if err != nil {
			if len(out.Results) > 0 {
				return fmt.Errorf("%s applied, then %s failed: %w", names(out.Results), d.Manifest.Metadata.Name, err)
			}
			return err
		}
		out.Results = append(out.Results, s.result(res.Record, res.Created, res.Changed))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) result(rec store.Record, created, changed bool) ApplyResult {
	action := ActionUnchanged
	switch {
	case created:
		action = ActionCreated
	case changed:
		action = ActionConfigured
	}
	return ApplyResult{Name: rec.Name, Action: action, Rollout: NewStatus(rec, s.opts.Now())}
}

func names(rs []ApplyResult) string {
	ns := make([]string, len(rs))
	for i, r := range rs {
		ns[i] = strconv.Quote(r.Name)
	}
	return strings.Join(ns, ", ")
}

// check validates every document and asks the controller whether it can
// run it. Problems of fields come first (400); a valid spec that needs an
// adapter this server lacks is unsupported (422).
func (s *Server) check(docs []manifest.Decoded) error {
	var problems rollout.FieldErrors
	seen := map[string]bool{}
	prefix := func(i int, e rollout.FieldError) rollout.FieldError {
		if len(docs) > 1 && !strings.HasPrefix(e.Path, "document ") {
			e.Path = fmt.Sprintf("document %d: %s", i+1, e.Path)
		}
		return e
	}
	for i, d := range docs {
		for _, e := range d.Validate() {
			problems = append(problems, prefix(i, e))
		}
		name := d.Manifest.Metadata.Name
		if name != "" && seen[name] {
			problems = append(problems, prefix(i, rollout.FieldError{Path: "metadata.name",
				Line: d.Lines["metadata.name"], Message: fmt.Sprintf("rollout %q is given twice in the request", name)}))
		}
		seen[name] = true
	}
	if len(problems) > 0 {
		what := "the manifest"
		if len(docs) > 1 {
			what = fmt.Sprintf("the request (%d manifests)", len(docs))
		}
		return invalidError{what: what, fields: problems}
	}
	for i, d := range docs {
		if err := s.opts.Controller.Supports(d.Manifest.Spec); err != nil {
			lines := func(p string) int { return lineOf(d, p) }
			return unsupportedError{err: fmt.Errorf("rollout %q: %w", d.Manifest.Metadata.Name, err), field: prefix(i, fieldOf(err, lines))}
		}
	}
	return nil
}

// lineOf finds the line of a field path or of its nearest ancestor.
func lineOf(d manifest.Decoded, path string) int {
	for p := path; p != ""; {
		if l, ok := d.Lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

func isJSON(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// decodeManifests reads one or more manifests: YAML documents separated by
// "---", one JSON object, or a JSON array of objects. Errors name the
// document, the field and the line.
func decodeManifests(body []byte, asJSON bool) ([]manifest.Decoded, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, badRequest("the request body is empty: send one or more rollout manifests as YAML or JSON")
	}
	if asJSON || trimmed[0] == '{' || trimmed[0] == '[' {
		if err := checkJSON(body); err != nil && asJSON {
			return nil, err
		}
	}
	if trimmed[0] == '[' {
		return decodeArray(body)
	}
	docs, err := manifest.Decode(body)
	if err != nil {
		return nil, decodeError(err, 0)
	}
	return docs, nil
}

// checkJSON reports malformed JSON with its line.
func checkJSON(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		var v json.RawMessage
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			line := lineAt(body, dec.InputOffset())
			var se *json.SyntaxError
			if errors.As(err, &se) {
				line = lineAt(body, se.Offset)
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				line = lineAt(body, int64(len(body)))
			}
			msg := strings.TrimPrefix(err.Error(), "json: ")
			return invalidError{msg: fmt.Sprintf("malformed JSON at line %d: %s", line, msg),
				fields: rollout.FieldErrors{{Path: "(body)", Line: line, Message: msg}}}
		}
	}
}

// lineAt is the 1-based line of a byte offset.
func lineAt(body []byte, off int64) int {
	off = min(max(off, 0), int64(len(body)))
	return bytes.Count(body[:off], []byte("\n")) + 1
}

// decodeArray reads a JSON array of manifests, each decoded strictly with
// its lines counted from the start of the body.
func decodeArray(body []byte) ([]manifest.Decoded, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil {
		return nil, badRequest("malformed JSON: %v", err)
	}
	var docs []manifest.Decoded
	for i := 1; dec.More(); i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, badRequest("malformed JSON in element %d: %v", i, err)
		}
		offset := lineAt(body, dec.InputOffset()-int64(len(raw))) - 1
		ds, err := manifest.Decode(raw)
		if err != nil {
			return nil, decodeError(relabel(err, i), offset)
		}
		for k, l := range ds[0].Lines {
			ds[0].Lines[k] = l + offset
		}
		docs = append(docs, ds[0])
	}
	if len(docs) == 0 {
		return nil, badRequest("the JSON array holds no rollout manifest")
	}
	return docs, nil
}

// relabel names array element i as document i in field errors.
func relabel(err error, i int) error {
	var fe rollout.FieldErrors
	if !errors.As(err, &fe) {
		return fmt.Errorf("document %d: %w", i, err)
	}
	out := make(rollout.FieldErrors, len(fe))
	for k, e := range fe {
		e.Path = fmt.Sprintf("document %d: %s", i, e.Path)
		out[k] = e
	}
	return out
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// decodeError turns manifest.Decode's error into a 400 naming fields and
// lines; offset shifts lines (for elements of a JSON array).
func decodeError(err error, offset int) error {
	var fe rollout.FieldErrors
	if errors.As(err, &fe) {
		out := make(rollout.FieldErrors, len(fe))
		for i, e := range fe {
			if e.Line > 0 {
				e.Line += offset
			}
			out[i] = e
		}
		return invalidError{what: "the manifest", fields: out}
	}
	msg := err.Error()
	f := rollout.FieldError{Path: "(document)", Message: msg}
	if doc, rest, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(doc, "document ") {
		f.Path, f.Message = "("+doc+")", rest
	}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		f.Line = n + offset
	}
	return invalidError{msg: "malformed YAML: " + msg, fields: rollout.FieldErrors{f}}
}

// readError passes a too-large body on (413) and calls anything else a bad
// request.
func readError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return err
	}
	return badRequest("read the request body: %v", err)
}

// releaseRequest is the body of POST /api/v1/rollouts/{name}/release.
type releaseRequest struct {
	Version   string   `json:"version"`
	Upstreams []string `json:"upstreams"`
}

// release changes a rollout's version (and upstreams) and applies the spec.
func (s *Server) release(w http.ResponseWriter, r *http.Request) error {
	var req releaseRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	name := r.PathValue("name")
	rec, err := s.opts.Controller.Get(name)
	if err != nil {
		return err
	}
	m := rec.Manifest
	if req.Version == "" {
		return invalidError{what: "the release", fields: rollout.FieldErrors{{Path: "version", Message: "give the version to release"}}}
	}
	if len(req.Upstreams) == 0 && m.Spec.TargetRef == nil {
		return invalidError{what: "the release", fields: rollout.FieldErrors{{Path: "upstreams",
			Message: fmt.Sprintf("give the addresses where %s runs (rollout %q runs on upstreams, not a Kubernetes target)", req.Version, name)}}}
	}
	m.Spec.Version = req.Version
	if len(req.Upstreams) > 0 {
		m.Spec.Upstreams = req.Upstreams
	}
	if errs := m.Validate(); len(errs) > 0 {
		return invalidError{what: "the release", fields: releaseFields(errs)}
	}
	res, err := s.opts.Controller.Apply(r.Context(), m)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.result(res.Record, res.Created, res.Changed))
	return nil
}

// releaseFields names the release's own fields for problems with the spec's
// version and upstreams.
func releaseFields(errs rollout.FieldErrors) rollout.FieldErrors {
	out := make(rollout.FieldErrors, len(errs))
	for i, e := range errs {
		switch {
		case e.Path == "spec.version":
			e.Path = "version"
		case strings.HasPrefix(e.Path, "spec.upstreams"):
			e.Path = strings.TrimPrefix(e.Path, "spec.")
		}
		out[i] = e
	}
	return out
}

// decodeJSON reads a JSON body strictly into v; an empty body is allowed
// when optional.
func decodeJSON(r *http.Request, v any, optional bool) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return readError(err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return badRequest("the request body is empty: send a JSON object")
	}
	if err := checkJSON(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return invalidError{what: "the request body", fields: rollout.FieldErrors{{Path: te.Field, Line: lineAt(body, te.Offset),
				Message: fmt.Sprintf("want %s, got a JSON %s", te.Type, te.Value)}}}
		}
		msg := strings.TrimPrefix(err.Error(), "json: ")
		if f, ok := strings.CutPrefix(msg, "unknown field "); ok {
			field, _ := strconv.Unquote(f)
			return invalidError{what: "the request body", fields: rollout.FieldErrors{{Path: field, Message: "unknown field " + f}}}
		}
		return badRequest("malformed JSON body: %s", msg)
	}
	if dec.More() {
		return badRequest("the request body holds more than one JSON value")
	}
	return nil
}
