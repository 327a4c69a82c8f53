package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"

	"aviary/internal/server"
	"github.com/spf13/cobra"
)

// oneName takes exactly one rollout name.
func oneName(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usagef("%s takes one rollout name, got %d argument(s)", cmd.CommandPath(), len(args))
	}
	return nil
}

// upToOneName takes at most one rollout name.
func upToOneName(cmd *cobra.Command, args []string) error {
	if len(args) > 1 {
		return usagef("%s takes at most one rollout name, got %d arguments", cmd.CommandPath(), len(args))
	}
	return nil
}

// writeAs writes v as JSON (exactly as the API answers it) or YAML; table
// output is the caller's.
func writeAs(w io.Writer, out string, v any) error {
	if out == outYAML {
		return writeYAML(w, v)
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newApplyCmd(sys *system) *cobra.Command {
	var cf clientFlags
	var file, out string
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create or update rollouts from manifests (multi-document YAML)",
		Long: `apply sends one or more rollout manifests to the server. The server checks
every document first and applies none if any is invalid; its errors name the
field and the line in FILE. A new version starts a run; the first version
of a rollout becomes stable at once.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(out, outTable, outJSON, outYAML); err != nil {
				return err
			}
			data, err := readInput(sys.stdin, file)
			if err != nil {
				return err
			}
			c, err := cf.client(sys)
			if err != nil {
				return err
			}
			var res server.Applied
			if err := c.do(cmd.Context(), http.MethodPost, "/api/v1/rollouts", data, "application/yaml", &res); err != nil {
				return fileError(file, err)
			}
			w := cmd.OutOrStdout()
			if out != outTable {
				return writeAs(w, out, res)
			}
			for _, r := range res.Results {
				if err := writeApplied(w, r); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "manifest file (- for standard input)")
	cmd.Flags().StringVarP(&out, "output", "o", outTable, "output format: table, json or yaml")
	cf.add(cmd)
	return cmd
}

// fileError names the file when the server found problems in it.
func fileError(file string, err error) error {
	var e *apiError
	if errors.As(err, &e) && (e.status == http.StatusBadRequest || e.status == http.StatusUnprocessableEntity) {
		return fmt.Errorf("%s: %w", displayName(file), err)
	}
	return err
}

// writeApplied prints what an apply or release did.
func writeApplied(w io.Writer, r server.ApplyResult) error {
	st := r.Rollout
	what := fmt.Sprintf("rollout %s %s", r.Name, r.Action)
	switch {
	case r.Action == server.ActionUnchanged:
	case st.Phase.Active():
		what += fmt.Sprintf(": releasing %s over %s (run %d, %s)", st.CanaryVersion, st.StableVersion, st.Run, st.Phase)
	default:
		what += fmt.Sprintf(": %s is stable (%s)", st.StableVersion, st.Phase)
	}
	_, err := fmt.Fprintln(w, what)
	return err
}

func newGetCmd(sys *system) *cobra.Command {
	var cf clientFlags
	var out string
	cmd := &cobra.Command{
		Use:   "get [NAME] [-o table|json|yaml]",
		Short: "List rollouts, or show one",
		Args:  upToOneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out, outTable, outJSON, outYAML); err != nil {
				return err
			}
			c, err := cf.client(sys)
			if err != nil {
				return err
			}
			var list server.List
			if len(args) == 1 {
				var st server.Status
				if err := c.get(cmd.Context(), rolloutPath(args[0]), &st); err != nil {
					return err
				}
				if out != outTable {
					return writeAs(cmd.OutOrStdout(), out, st)
				}
				list.Rollouts = []server.Status{st}
			} else {
				if err := c.get(cmd.Context(), "/api/v1/rollouts", &list); err != nil {
					return err
				}
				if out != outTable {
					return writeAs(cmd.OutOrStdout(), out, list)
				}
			}
			return writeRolloutTable(cmd.OutOrStdout(), sys, list.Rollouts)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", outTable, "output format: table, json or yaml")
	cf.add(cmd)
	return cmd
}

// writeRolloutTable prints one line per rollout.
func writeRolloutTable(w io.Writer, sys *system, rs []server.Status) error {
	if len(rs) == 0 {
		_, err := fmt.Fprintln(w, "no rollouts (create one with `aviary apply -f FILE`)")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPHASE\tSTABLE\tCANARY\tWEIGHT\tSTEP\tRUN\tUPDATED")
	for _, r := range rs {
		canary, weight, step := "-", "-", "-"
		if r.Phase.Active() {
			canary, weight = r.CanaryVersion, fmt.Sprintf("%d%%", r.CanaryWeight)
			step = fmt.Sprintf("%d/%d", r.Step, r.Steps)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.Name, r.Phase, r.StableVersion, canary, weight, step, r.Run, ago(sys, r.UpdatedAt))
	}
	return tw.Flush()
}

func newDeleteCmd(sys *system) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Stop serving a rollout and remove it with its history",
		Args:  oneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(sys)
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), http.MethodDelete, rolloutPath(args[0]), nil, "", nil); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "rollout %s deleted\n", args[0])
			return err
		},
	}
	cf.add(cmd)
	return cmd
}
