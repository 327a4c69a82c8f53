// Package manifest reads rollout manifests from YAML strictly: an unknown
// field, a value of the wrong type or a malformed duration is an error that
// names its field path and line. It imports the core (rollout) and a YAML
// parser; the core itself stays free of both.
package manifest

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"aviary/internal/rollout"
	yaml "go.yaml.in/yaml/v3"
)

// Decoded is one manifest read from YAML, with the line of every field so
// that validation errors can point at the file.
type Decoded struct {
	Manifest rollout.Manifest
	// Lines maps field paths ("spec.analysis.metrics[1].max") to lines.
	Lines map[string]int
}

// Validate validates the manifest and annotates the problems with lines.
func (d Decoded) Validate() rollout.FieldErrors {
	es := d.Manifest.Validate()
	for i := range es {
		es[i].Line = d.line(es[i].Path)
	}
	return es
}

// line finds the line of path or of its nearest ancestor in the file.
func (d Decoded) line(path string) int {
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

// Decode reads one or more YAML (or JSON) documents of rollout manifests,
// strictly: an unknown field, a value of the wrong type or a malformed
// duration is an error naming its field path and line. Empty documents are
// skipped. Decode does not validate; call Validate on each result.
func Decode(data []byte) ([]Decoded, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []Decoded
	for doc := 1; ; doc++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		if len(n.Content) == 0 || (n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null") {
			continue
		}
		d, err := decodeNode(n.Content[0])
		if err != nil {
			var fe rollout.FieldErrors
			if errors.As(err, &fe) && doc > 1 {
				for i := range fe {
					fe[i].Path = fmt.Sprintf("document %d: %s", doc, fe[i].Path)
				}
			}
			return nil, err
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, errors.New("no rollout manifest in the input")
	}
	return out, nil
}

func decodeNode(n *yaml.Node) (Decoded, error) {
	var m rollout.Manifest
	lines, err := decodeInto(n, &m)
	if err != nil {
		return Decoded{}, err
	}
	return Decoded{Manifest: m, Lines: lines}, nil
}

// DecodeInto reads one YAML (or JSON) document into v, a pointer to a
// struct, as strictly as Decode reads manifests.
func DecodeInto(data []byte, v any) error {
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		return err
	}
	if len(n.Content) == 0 {
		return errors.New("the document is empty")
	}
	_, err := decodeInto(n.Content[0], v)
	return err
}

func decodeInto(n *yaml.Node, v any) (map[string]int, error) {
	c := converter{lines: map[string]int{}}
	plain := c.convert(n, reflect.TypeOf(v).Elem(), "")
	if len(c.errs) > 0 {
		sortByLine(c.errs)
		return nil, c.errs
	}
	b, err := json.Marshal(plain)
	if err != nil {
		return nil, fmt.Errorf("encode document: %w", err)
	}
	jd := json.NewDecoder(bytes.NewReader(b))
	jd.DisallowUnknownFields()
	if err := jd.Decode(v); err != nil {
		return nil, fmt.Errorf("decode document: %w", err)
	}
	return c.lines, nil
}

// converter turns a YAML node tree into plain values ready for JSON
// decoding, checking every field against the Go type it will land in.
type converter struct {
	errs  rollout.FieldErrors
	lines map[string]int
}

func (c *converter) fail(n *yaml.Node, path, format string, args ...any) {
	if path == "" {
		path = "(document)"
	}
	c.errs = append(c.errs, rollout.FieldError{Path: path, Line: n.Line, Message: fmt.Sprintf(format, args...)})
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func (c *converter) convert(n *yaml.Node, t reflect.Type, path string) any {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if path != "" {
		c.lines[path] = n.Line
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return c.custom(n, t, path)
	}
	switch t.Kind() {
	case reflect.Pointer:
		return c.convert(n, t.Elem(), path)
	case reflect.Struct:
		return c.structValue(n, t, path)
	case reflect.Map:
		return c.mapValue(n, t, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			c.fail(n, path, "want a list, got %s", describe(n))
			return nil
		}
		out := make([]any, len(n.Content))
		for i, e := range n.Content {
			out[i] = c.convert(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
		return out
	default:
		return c.scalar(n, t, path)
	}
}

func (c *converter) structValue(n *yaml.Node, t reflect.Type, path string) any {
	if n.Kind != yaml.MappingNode {
		c.fail(n, path, "want a mapping of fields, got %s", describe(n))
		return nil
	}
	fields := jsonFields(t)
	out := map[string]any{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := join(path, k.Value)
		ft, ok := fields[k.Value]
		if !ok {
			c.fail(k, p, "unknown field %q%s", k.Value, suggest(k.Value, fields))
			continue
		}
		if _, dup := out[k.Value]; dup {
			c.fail(k, p, "field %q is given twice", k.Value)
			continue
		}
		out[k.Value] = c.convert(v, ft, p)
	}
	return out
}

func (c *converter) mapValue(n *yaml.Node, t reflect.Type, path string) any {
	if n.Kind != yaml.MappingNode {
		c.fail(n, path, "want a mapping, got %s", describe(n))
		return nil
	}
	out := map[string]any{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := fmt.Sprintf("%s[%s]", path, strconv.Quote(k.Value))
		if _, dup := out[k.Value]; dup {
			c.fail(k, p, "key %q is given twice", k.Value)
			continue
		}
		out[k.Value] = c.convert(v, t.Elem(), p)
	}
	return out
}

func (c *converter) scalar(n *yaml.Node, t reflect.Type, path string) any {
	if n.Kind != yaml.ScalarNode {
		c.fail(n, path, "want %s, got %s", kindName(t), describe(n))
		return nil
	}
	switch t.Kind() {
	case reflect.String:
		return n.Value
	case reflect.Bool:
		var b bool
		if n.Tag != "!!bool" || n.Decode(&b) != nil {
			c.fail(n, path, "want true or false, got %q", n.Value)
			return nil
		}
		return b
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 0, t.Bits())
		if n.Tag != "!!int" || err != nil {
			c.fail(n, path, "want a whole number, got %q", n.Value)
			return nil
		}
		return i
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if (n.Tag != "!!int" && n.Tag != "!!float") || err != nil {
			c.fail(n, path, "want a number, got %q", n.Value)
			return nil
		}
		return f
	}
	c.fail(n, path, "unsupported field type %s", t)
	return nil
}

// custom hands a scalar to a type's own JSON decoding (durations, numbers
// with units) and reports its error at the field's path.
func (c *converter) custom(n *yaml.Node, t reflect.Type, path string) any {
	if n.Kind != yaml.ScalarNode {
		c.fail(n, path, "want a single value, got %s", describe(n))
		return nil
	}
	var v any = n.Value
	if n.Tag == "!!int" || n.Tag == "!!float" {
		if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
			v = f
		}
	}
	b, _ := json.Marshal(v)
	if err := json.Unmarshal(b, reflect.New(t).Interface()); err != nil {
		c.fail(n, path, "%s", strings.TrimPrefix(err.Error(), "json: "))
		return nil
	}
	return v
}

// jsonFields maps the JSON names of t's fields (embedded structs inlined) to
// their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			for k, v := range jsonFields(ft) {
				out[k] = v
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "an unexpected value"
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.String()
}

// suggest names the known field closest to an unknown one, to catch typos.
func suggest(name string, fields map[string]reflect.Type) string {
	best, bestD := "", 3
	for k := range fields {
		if d := editDistance(strings.ToLower(name), strings.ToLower(k)); d < bestD || (d == bestD && best != "" && k < best) {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// sortByLine orders errors by line; errors without a line keep their
// relative order after those with one.
func sortByLine(es rollout.FieldErrors) {
	sort.SliceStable(es, func(i, j int) bool {
		li, lj := es[i].Line, es[j].Line
		if (li == 0) != (lj == 0) {
			return li != 0
		}
		return li < lj
	})
}
