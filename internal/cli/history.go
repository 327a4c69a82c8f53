package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"aviary/internal/server"
	"github.com/spf13/cobra"
)

func newHistoryCmd(sys *system) *cobra.Command {
	var cf clientFlags
	var out string
	cmd := &cobra.Command{
		Use:   "history NAME",
		Short: "List a rollout's runs with their verdicts",
		Args:  oneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out, outTable, outJSON, outYAML); err != nil {
				return err
			}
			c, err := cf.client(sys)
			if err != nil {
				return err
			}
			var runs server.Runs
			if err := c.get(cmd.Context(), rolloutPath(args[0], "runs"), &runs); err != nil {
				return err
			}
			if out != outTable {
				return writeAs(cmd.OutOrStdout(), out, runs)
			}
			return writeRuns(cmd.OutOrStdout(), sys, args[0], runs.Runs)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", outTable, "output format: table, json or yaml")
	cf.add(cmd)
	return cmd
}

func writeRuns(w io.Writer, sys *system, name string, runs []server.Run) error {
	if len(runs) == 0 {
		_, err := fmt.Fprintf(w, "rollout %s has had no run yet: its first version was released as stable\n", name)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tVERSION\tSTABLE\tSTARTED\tTOOK\tOUTCOME\tREASON")
	for _, r := range runs {
		took, outcome := "-", "running"
		if r.EndedAt != nil {
			took = roundDuration(r.EndedAt.Sub(r.StartedAt))
			outcome = string(r.Outcome)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Run, r.Version, r.StableVersion, clock(sys, r.StartedAt), took, outcome, oneLine(r.Reason))
	}
	return tw.Flush()
}

func newEventsCmd(sys *system) *cobra.Command {
	var cf clientFlags
	var out string
	var after int64
	cmd := &cobra.Command{
		Use:   "events NAME",
		Short: "List a rollout's events, oldest first",
		Args:  oneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out, outTable, outJSON, outYAML); err != nil {
				return err
			}
			if after < 0 {
				return usagef("--after must be 0 or more, got %d", after)
			}
			c, err := cf.client(sys)
			if err != nil {
				return err
			}
			all := server.Events{Events: []server.Event{}, Next: after}
			for {
				var page server.Events
				path := fmt.Sprintf("%s?after=%d&limit=%d", rolloutPath(args[0], "events"), all.Next, server.MaxEventLimit)
				if err := c.get(cmd.Context(), path, &page); err != nil {
					return err
				}
				all.Events = append(all.Events, page.Events...)
				all.Next = page.Next
				if len(page.Events) < server.MaxEventLimit {
					break
				}
			}
			if out != outTable {
				return writeAs(cmd.OutOrStdout(), out, all)
			}
			return writeEvents(cmd.OutOrStdout(), sys, all.Events)
		},
	}
	cmd.Flags().Int64Var(&after, "after", 0, "show only events after this id")
	cmd.Flags().StringVarP(&out, "output", "o", outTable, "output format: table, json or yaml")
	cf.add(cmd)
	return cmd
}

func writeEvents(w io.Writer, sys *system, evs []server.Event) error {
	if len(evs) == 0 {
		_, err := fmt.Fprintln(w, "no events")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tRUN\tSTEP\tWEIGHT\tTYPE\tREASON")
	for _, e := range evs {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d%%\t%s\t%s\n", e.ID, clock(sys, e.Time), e.Run, e.Step, e.Weight, e.Type, oneLine(e.Reason))
	}
	return tw.Flush()
}

// clock formats a time for tables: date and time in the local zone.
func clock(sys *system, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(sys.loc).Format("2006-01-02 15:04:05")
}

// ago formats how long ago t was: "12s ago", "5m ago", "3h ago", "2d ago".
func ago(sys *system, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return roundDuration(sys.now().Sub(t)) + " ago"
}

// roundDuration formats d at the precision people read: 45s, 12m, 3h5m, 2d.
func roundDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// oneLine keeps table cells on one line ("-" when empty).
func oneLine(s string) string {
	if s = strings.Join(strings.Fields(s), " "); s == "" {
		return "-"
	}
	return s
}
