package cli

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"

	"aviary/internal/rollout"
	"aviary/internal/server"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func newStatusCmd(sys *system) *cobra.Command {
	var cf clientFlags
	var out string
	var watch bool
	cmd := &cobra.Command{
		Use:   "status NAME [-w] [-o json|yaml]",
		Short: "Show a rollout's run: phase, steps, weight and the latest checks",
		Long: `status shows where a rollout's run stands. With -w it follows the run live
until it ends: on a terminal the view is redrawn in place; otherwise each
event and check is printed as a line. With -w, status exits 0 when the run
ends Succeeded and 1 when it ends otherwise (Failed, withdrawn, deleted).
With -w -o json, each change is printed as one line of JSON.`,
		Args: oneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out, outTable, outJSON, outYAML); err != nil {
				return err
			}
			if watch && out == outYAML {
				return usagef("-w prints JSON lines or a live view; -o yaml is not supported with -w")
			}
			c, err := cf.client(sys)
			if err != nil {
				return err
			}
			if watch {
				return watchStatus(cmd, sys, c, args[0], out)
			}
			var st server.Status
			if err := c.get(cmd.Context(), rolloutPath(args[0]), &st); err != nil {
				return err
			}
			if out != outTable {
				return writeAs(cmd.OutOrStdout(), out, st)
			}
			_, err = io.WriteString(cmd.OutOrStdout(), strings.Join(statusLines(sys, st), "\n")+"\n")
			return err
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "follow the run live until it ends")
	cmd.Flags().StringVarP(&out, "output", "o", outTable, "output format: table, json or yaml")
	cf.add(cmd)
	return cmd
}

// terminalOf reports whether w is a terminal, and its width.
func terminalOf(w io.Writer) (bool, int) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false, 0
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil || width <= 0 {
		width = 80
	}
	return true, width
}

// statusLines renders a rollout's status for people.
func statusLines(sys *system, st server.Status) []string {
	lines := []string{fmt.Sprintf("rollout %s: %s%s", st.Name, st.Phase, runText(st))}
	add := func(label, format string, args ...any) {
		lines = append(lines, fmt.Sprintf("  %-9s %s", label, fmt.Sprintf(format, args...)))
	}
	add("stable", "%s", st.StableVersion)
	switch {
	case st.CanaryVersion != "" && st.Phase.Active():
		add("canary", "%s at %3d%%  %s", st.CanaryVersion, st.CanaryWeight, bar(float64(st.CanaryWeight)/100, 20))
	case st.CanaryVersion != "" && st.Phase == rollout.PhaseFailed:
		add("canary", "%s, rolled back (`aviary retry %s` releases it again)", st.CanaryVersion, st.Name)
	}
	if st.Run > 0 && st.Steps > 0 {
		add("steps", "%s %d/%d  %s", bar(stepsDone(st), 20), st.Step, st.Steps, planText(st))
	}
	if w := st.Waiting; w != nil {
		add("waiting", "%s since %s (%s)", waitText(st.Name, w), clock(sys, w.Since), ago(sys, w.Since))
	}
	if p := st.Pause; p != nil {
		add("paused", "%s: %s", p.Cause, p.Reason)
	}
	if st.Message != "" {
		add("message", "%s", st.Message)
	}
	if len(st.Checks) > 0 {
		add("checks", "%d failed interval(s), %d tolerated", st.Failures, st.FailureLimit)
		lines = append(lines, checkLines(st.Checks)...)
	}
	if st.RollbackUntil != nil {
		add("rollback", "`aviary rollback %s` restores %s until %s", st.Name, st.PreviousVersion, clock(sys, *st.RollbackUntil))
	}
	return lines
}

func runText(st server.Status) string {
	switch {
	case st.Run == 0:
		return ", no run yet"
	case st.Phase.Active():
		return fmt.Sprintf(", run %d: %s over %s", st.Run, st.CanaryVersion, st.StableVersion)
	}
	return fmt.Sprintf(", run %d ended", st.Run)
}

// stepsDone is the share of steps completed.
func stepsDone(st server.Status) float64 {
	switch {
	case st.Phase == rollout.PhaseSucceeded || st.Phase == rollout.PhasePromoting:
		return 1
	case st.Steps == 0 || st.Step < 1:
		return 0
	}
	return float64(st.Step-1) / float64(st.Steps)
}

// planText lists the steps, marking those done (✔), the current one (▶)
// and those to come (·).
func planText(st server.Status) string {
	parts := make([]string, len(st.Plan))
	for i, p := range st.Plan {
		mark := "·"
		switch {
		case st.Phase == rollout.PhaseSucceeded || st.Phase == rollout.PhasePromoting || i+1 < st.Step:
			mark = "✔"
		case i+1 == st.Step && st.Phase.Active():
			mark = "▶"
		}
		parts[i] = mark + " " + stepText(p)
	}
	return strings.Join(parts, "  ")
}

func stepText(p server.PlanStep) string {
	switch p.Kind {
	case "setWeight":
		return fmt.Sprintf("%d%%", p.Weight)
	case "gate":
		return "gate " + p.Gate
	}
	if p.Duration != "" {
		return p.Kind + " " + p.Duration
	}
	return p.Kind
}

func waitText(name string, w *server.Waiting) string {
	switch w.Kind {
	case rollout.WaitPause:
		return fmt.Sprintf("for `aviary promote %s`", name)
	case rollout.WaitGate:
		return fmt.Sprintf("at gate %s: `aviary approve %s --gate %s`", w.Name, name, w.Name)
	case rollout.WaitDecision:
		return fmt.Sprintf("for a decision (%s): `aviary approve %s` or `aviary abort %s`", w.Name, name, name)
	case rollout.WaitWebhook:
		return fmt.Sprintf("for webhook %s", w.Name)
	}
	return w.Kind + " " + w.Name
}

// bar draws a progress bar of width cells filled to share (0-1).
func bar(share float64, width int) string {
	share = math.Max(0, math.Min(1, share))
	n := int(math.Round(share * float64(width)))
	return "[" + strings.Repeat("█", n) + strings.Repeat("░", width-n) + "]"
}

// checkLines renders the latest checks as an indented table.
func checkLines(cs []server.Check) []string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "    METRIC\tVERDICT\tCANARY\tSTABLE\tSAMPLES\tREASON")
	for _, c := range cs {
		samples := count(c.CanarySamples)
		if c.StableSamples != nil {
			samples += " / " + count(*c.StableSamples)
		}
		fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\t%s\n", c.Metric, c.Verdict, number(c.Canary), number(c.Stable), samples, oneLine(c.Reason))
	}
	_ = tw.Flush()
	return strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
}

func number(f *float64) string {
	if f == nil {
		return "-"
	}
	return fmt.Sprintf("%.4g", *f)
}

func count(n int64) string {
	if n < 0 {
		return "?"
	}
	return thousands(n)
}
