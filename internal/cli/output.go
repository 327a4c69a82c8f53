package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"

	"sigs.k8s.io/yaml"
)

// Output formats.
const (
	outTable = "table"
	outJSON  = "json"
	outYAML  = "yaml"
)

// checkOutput refuses an unknown -o value with a usage error.
func checkOutput(o string, allowed ...string) error {
	if !slices.Contains(allowed, o) {
		return usagef("unknown output format %q (want one of %v)", o, allowed)
	}
	return nil
}

// writeJSON writes v as indented JSON with a trailing newline.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// writeYAML writes v as YAML (through its JSON form, so JSON tags apply).
func writeYAML(w io.Writer, v any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// readInput reads a file, or standard input for "-".
func readInput(stdin io.Reader, path string) ([]byte, error) {
	if path == "" {
		return nil, usagef("give a file with -f (or - for standard input)")
	}
	if path == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(path)
}
