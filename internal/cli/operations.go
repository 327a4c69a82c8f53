package cli

import (
	"fmt"
	"io"

	"aviary/internal/rollout"
	"aviary/internal/server"
	"github.com/spf13/cobra"
)

func newReleaseCmd(sys *system) *cobra.Command {
	var cf clientFlags
	var version, out string
	var upstreams []string
	cmd := &cobra.Command{
		Use:   "release NAME --version V --upstream URL...",
		Short: "Release a new version: change the spec's version and upstreams",
		Long: `release is shorthand for editing the rollout's spec: it sets spec.version and
spec.upstreams and applies the result, which starts a run of the new version.
Repeat --upstream (or separate addresses with commas) for several.`,
		Args: oneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out, outTable, outJSON, outYAML); err != nil {
				return err
			}
			if version == "" {
				return usagef("give the version to release with --version")
			}
			c, err := cf.client(sys)
			if err != nil {
				return err
			}
			var res server.ApplyResult
			body := map[string]any{"version": version, "upstreams": upstreams}
			if err := c.post(cmd.Context(), rolloutPath(args[0], "release"), body, &res); err != nil {
				return err
			}
			if out != outTable {
				return writeAs(cmd.OutOrStdout(), out, res)
			}
			return writeApplied(cmd.OutOrStdout(), res)
		},
	}
	cmd.Flags().StringVar(&version, "version", "", "the version to release")
	cmd.Flags().StringSliceVar(&upstreams, "upstream", nil, "an address where the version runs (repeatable)")
	cmd.Flags().StringVarP(&out, "output", "o", outTable, "output format: table, json or yaml")
	cf.add(cmd)
	return cmd
}

// operation describes one of the commands that act on a run.
type operation struct {
	op, use, short, long string
	full, gate           bool
}

var operations = []operation{
	{op: rollout.OpPromote, use: "promote NAME [--full]", short: "Pass the current gate or pause, or skip to 100% with --full", full: true,
		long: "promote moves a run past what holds it: a pause for `aviary promote`, a gate, or\na pause after failed checks. With --full the canary takes all traffic at once\nand is promoted."},
	{op: rollout.OpAbort, use: "abort NAME", short: "Roll the current run back now",
		long: "abort ends the run: the stable version takes all traffic again and the canary\nversion is not released again until the spec changes or `aviary retry`."},
	{op: rollout.OpPause, use: "pause NAME", short: "Hold the current run at its weight until resumed"},
	{op: rollout.OpResume, use: "resume NAME", short: "Resume a paused run"},
	{op: rollout.OpRetry, use: "retry NAME", short: "Release a failed version again"},
	{op: rollout.OpRollback, use: "rollback NAME", short: "Restore the previous stable version after a promotion (within the rollback window)"},
	{op: rollout.OpApprove, use: "approve NAME [--gate G]", short: "Answer a gate or decision that waits for a person", gate: true,
		long: "approve passes the gate the run waits at. With --gate the approval is refused\nunless the run waits at that gate, so that a late approval cannot pass the next\none."},
}

func newOperationCmds(sys *system) []*cobra.Command {
	cmds := make([]*cobra.Command, len(operations))
	for i, o := range operations {
		cmds[i] = newOperationCmd(sys, o)
	}
	return cmds
}

func newOperationCmd(sys *system, o operation) *cobra.Command {
	var cf clientFlags
	var out, reason, gate string
	var full bool
	cmd := &cobra.Command{
		Use:   o.use,
		Short: o.short,
		Long:  o.long,
		Args:  oneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out, outTable, outJSON, outYAML); err != nil {
				return err
			}
			c, err := cf.client(sys)
			if err != nil {
				return err
			}
			body := map[string]any{}
			if full {
				body["full"] = true
			}
			if gate != "" {
				body["gate"] = gate
			}
			if reason != "" {
				body["reason"] = reason
			}
			var st server.Status
			if err := c.post(cmd.Context(), rolloutPath(args[0], o.op), body, &st); err != nil {
				return err
			}
			if out != outTable {
				return writeAs(cmd.OutOrStdout(), out, st)
			}
			return writeOperation(cmd.OutOrStdout(), o.op, st)
		},
	}
	if o.full {
		cmd.Flags().BoolVar(&full, "full", false, "skip the remaining steps: promote to 100% now")
	}
	if o.gate {
		cmd.Flags().StringVar(&gate, "gate", "", "the gate to approve (refused if the run waits elsewhere)")
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded in the rollout's events")
	cmd.Flags().StringVarP(&out, "output", "o", outTable, "output format: table, json or yaml")
	cf.add(cmd)
	return cmd
}

// writeOperation prints where a rollout stands after an operation.
func writeOperation(w io.Writer, op string, st server.Status) error {
	where := string(st.Phase)
	if st.Phase.Active() {
		where = fmt.Sprintf("%s at step %d/%d, %s at %d%%", st.Phase, st.Step, st.Steps, st.CanaryVersion, st.CanaryWeight)
	}
	_, err := fmt.Fprintf(w, "%s %s: %s\n  %s\n", st.Name, op, where, st.Message)
	return err
}
