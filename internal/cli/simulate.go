package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"aviary/internal/manifest"
	"aviary/internal/simulate"
	"github.com/spf13/cobra"
)

func newSimulateCmd(stdin io.Reader) *cobra.Command {
	var file, scenario, out, policy string
	var seed uint64
	cmd := &cobra.Command{
		Use:   "simulate -f SPEC --scenario FILE [--seed N] [--policy aviary|threshold] [-o json]",
		Short: "Replay a release offline against synthetic traffic (no server needed)",
		Long: `simulate releases the spec's version against synthetic traffic described by a
scenario, driving aviary's real state machine and checks with a fake clock.
It prints the timeline (time, phase, weight, step, checks and decisions) and
the final verdict. The same spec, scenario and seed always give the same run.

--policy threshold replays the same scenario (the same traffic, second by
second) under the common fixed-threshold rule instead of the spec's
analysis: a success rate of at least 99% in each 1-minute interval, a minute
without canary requests counting as failed, rollback at the fifth failed
check. It is there for comparison.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(out, outTable, outJSON); err != nil {
				return err
			}
			if scenario == "" {
				return usagef("give a scenario with --scenario FILE")
			}
			if !slices.Contains(simulate.Policies, policy) {
				return usagef("unknown policy %q (want %s)", policy, strings.Join(simulate.Policies, " or "))
			}
			ms, err := loadManifests(stdin, file)
			if err != nil {
				return err
			}
			if len(ms) != 1 {
				return fmt.Errorf("%s holds %d rollouts; simulate takes one", displayName(file), len(ms))
			}
			data, err := readInput(stdin, scenario)
			if err != nil {
				return err
			}
			var sc simulate.Scenario
			if err := manifest.DecodeInto(data, &sc); err != nil {
				return invalid(scenario, err)
			}
			if errs := sc.Validate(); len(errs) > 0 {
				return invalid(scenario, errs)
			}
			res, err := simulate.Run(ms[0], sc, simulate.Options{Seed: seed, Policy: policy})
			if err != nil {
				return err
			}
			if out == outJSON {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			return writeTimeline(cmd.OutOrStdout(), res)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "rollout manifest")
	cmd.Flags().StringVar(&scenario, "scenario", "", "scenario file")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "random seed of the synthetic traffic")
	cmd.Flags().StringVar(&policy, "policy", simulate.PolicyAviary, "how checks are judged: aviary (the spec's analysis) or threshold (success rate >= 99% per minute, rollback at the 5th failure)")
	cmd.Flags().StringVarP(&out, "output", "o", outTable, "output format: table or json")
	return cmd
}

// writeTimeline prints a simulation as a readable timeline.
func writeTimeline(w io.Writer, r simulate.Result) error {
	fmt.Fprintf(w, "simulating %s: canary %s against stable %s (seed %d)\n", r.Rollout, r.Canary, r.Stable, r.Seed)
	if r.Policy == simulate.PolicyThreshold {
		fmt.Fprintf(w, "policy: threshold (success rate >= 99%% per 1-minute interval, a minute without data fails, rollback at the 5th failed check)\n")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tPHASE\tWEIGHT\tSTEP\tWHAT")
	for _, e := range r.Timeline {
		prefix := fmt.Sprintf("%s\t%s\t%d%%\t%s\t", e.At, e.Phase, e.Weight, e.Step)
		switch e.Kind {
		case simulate.EntryChecks:
			for _, c := range e.Checks {
				fmt.Fprintf(tw, "%scheck %s: %s\n", prefix, strings.ToLower(c.Verdict.String()), c.Reason)
			}
		case simulate.EntryCommand:
			fmt.Fprintf(tw, "%s$ %s\n", prefix, e.Reason)
		default:
			fmt.Fprintf(tw, "%s%s: %s\n", prefix, e.Type, e.Reason)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	v := r.Verdict
	fmt.Fprintf(w, "\nverdict: %s at %s: %s\n", v.Phase, v.At, v.Reason)
	_, err := fmt.Fprintf(w, "canary served %s requests, %s errors\n", thousands(v.CanaryRequests), thousands(v.CanaryErrors))
	return err
}

// thousands formats n with thousands separators: 1,234,567.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}
