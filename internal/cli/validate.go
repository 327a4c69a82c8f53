package cli

import (
	"errors"
	"fmt"
	"io"

	"aviary/internal/manifest"
	"aviary/internal/rollout"
	"github.com/spf13/cobra"
)

func newValidateCmd(stdin io.Reader) *cobra.Command {
	var file, out string
	cmd := &cobra.Command{
		Use:   "validate -f FILE",
		Short: "Check rollout manifests and print them normalized (no server needed)",
		Long: `validate reads one or more rollout manifests (multi-document YAML) and checks
them strictly. With problems, it lists every one with its field path and line
and exits 1. Without, it prints the manifests with every default filled in and
shorthand steps expanded, which is exactly what aviary will run.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(out, outYAML, outJSON); err != nil {
				return err
			}
			ms, err := loadManifests(stdin, file)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for i, m := range ms {
				n := m.Normalize()
				if out == outJSON {
					err = writeJSON(w, n)
				} else {
					if i > 0 {
						fmt.Fprintln(w, "---")
					}
					err = writeYAML(w, n)
				}
				if err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "manifest file (- for standard input)")
	cmd.Flags().StringVarP(&out, "output", "o", outYAML, "output format: yaml or json")
	return cmd
}

// loadManifests reads and validates manifests; the error lists every
// problem of every document.
func loadManifests(stdin io.Reader, file string) ([]rollout.Manifest, error) {
	data, err := readInput(stdin, file)
	if err != nil {
		return nil, err
	}
	ds, err := manifest.Decode(data)
	if err != nil {
		return nil, invalid(file, err)
	}
	var ms []rollout.Manifest
	var problems rollout.FieldErrors
	names := map[string]bool{}
	for i, d := range ds {
		errs := d.Validate()
		name := d.Manifest.Metadata.Name
		if names[name] && name != "" {
			errs = append(errs, rollout.FieldError{Path: "metadata.name", Line: d.Lines["metadata.name"], Message: fmt.Sprintf("rollout %q is defined twice in the file", name)})
		}
		names[name] = true
		for _, e := range errs {
			if len(ds) > 1 {
				e.Path = fmt.Sprintf("document %d (%s): %s", i+1, name, e.Path)
			}
			problems = append(problems, e)
		}
		ms = append(ms, d.Manifest)
	}
	if len(problems) > 0 {
		return nil, invalid(file, problems)
	}
	return ms, nil
}

// invalid reports problems with an input file, one per line.
func invalid(file string, err error) error {
	var fe rollout.FieldErrors
	if errors.As(err, &fe) {
		return fmt.Errorf("%s is invalid (%d problem(s)):\n%w", displayName(file), len(fe), indented(fe))
	}
	return fmt.Errorf("%s: %w", displayName(file), err)
}

func displayName(file string) string {
	if file == "-" {
		return "standard input"
	}
	return file
}

// indentedErrors prints each problem on its own indented line.
type indentedErrors rollout.FieldErrors

func indented(fe rollout.FieldErrors) error { return indentedErrors(fe) }

func (es indentedErrors) Error() string {
	s := ""
	for i, e := range es {
		if i > 0 {
			s += "\n"
		}
		s += "  " + e.Error()
	}
	return s
}

func (es indentedErrors) Unwrap() error { return rollout.FieldErrors(es) }
