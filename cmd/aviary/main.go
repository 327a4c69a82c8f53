// Command aviary releases new versions of HTTP services progressively.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"aviary/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
