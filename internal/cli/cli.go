// Package cli is aviary's command line: it parses arguments, calls the core
// or the server's API, and prints tables, JSON or YAML. Commands write to the
// writers they are given and return errors; Main maps errors to exit codes.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Exit codes of the command-line contract.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// Version is set at build time with -ldflags "-X aviary/internal/cli.Version=...".
var Version = "dev"

// usageError marks an error as a usage error (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// Main runs the command line with args (args[0] is the program name) and
// returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return run(ctx, args, os.Stdin, stdout, stderr)
}

// system is what commands take from the process: input, environment, the
// clock, the terminal and the HTTP client. Tests pass their own.
type system struct {
	stdin  io.Reader
	getenv func(string) string
	now    func() time.Time
	// loc is the time zone of times in tables.
	loc *time.Location
	// terminal reports whether w is a terminal and its width.
	terminal func(w io.Writer) (bool, int)
	http     *http.Client
}

func osSystem() *system {
	return &system{stdin: os.Stdin, getenv: os.Getenv, now: time.Now, loc: time.Local, terminal: terminalOf, http: defaultHTTP()}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	sys := osSystem()
	sys.stdin = stdin
	return runWith(ctx, args, sys, stdout, stderr)
}

func runWith(ctx context.Context, args []string, sys *system, stdout, stderr io.Writer) int {
	root := newRoot(sys)
	root.SetArgs(args[1:])
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(stderr, "aviary: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
		return ExitUsage
	}
	return ExitFailed
}

func newRoot(sys *system) *cobra.Command {
	root := &cobra.Command{
		Use:           "aviary",
		Short:         "aviary releases new versions of HTTP services progressively",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	// Flag and argument errors are usage errors (exit 2).
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newApplyCmd(sys),
		newGetCmd(sys),
		newStatusCmd(sys),
		newReleaseCmd(sys),
		newDeleteCmd(sys),
		newHistoryCmd(sys),
		newEventsCmd(sys),
		newValidateCmd(sys.stdin),
		newSimulateCmd(sys.stdin),
		newJudgeCmd(sys.stdin),
		newServerCmd(sys),
		newProxyCmd(sys),
		newDemoCmd(sys),
		newVersionCmd(),
	)
	root.AddCommand(newOperationCmds(sys)...)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print aviary's version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "aviary %s\n", Version)
			return err
		},
	}
}

// noArgs refuses positional arguments with a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}
