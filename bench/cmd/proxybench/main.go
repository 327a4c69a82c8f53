// Command proxybench runs aviary's built-in proxy alone, for bench/proxy.sh:
// one listener, one stable and one optional canary version, a fixed weight.
// It stands in for `aviary proxy` until the command line wires the proxy.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"aviary/internal/proxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	stable := flag.String("stable", "", "stable upstream URLs, comma-separated")
	canary := flag.String("canary", "", "canary upstream URLs, comma-separated (empty: no canary)")
	weight := flag.Int("weight", 10, "percent of requests sent to the canary")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	netHTTP := flag.Bool("nethttp", false, "serve with net/http's server instead of the proxy's HTTP/1 server")
	cert := flag.String("cert", "", "terminate TLS with this PEM certificate (with -key)")
	key := flag.String("key", "", "the PEM private key of -cert")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "proxybench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(proxy.ListenConfig{Addr: *listen, CertFile: *cert, KeyFile: *key}, *stable, *canary, *weight, *netHTTP); err != nil {
		fmt.Fprintln(os.Stderr, "proxybench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(lc proxy.ListenConfig, stable, canary string, weight int, netHTTP bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p, err := proxy.New(proxy.Options{Name: "bench", NetHTTPServer: netHTTP})
	if err != nil {
		return err
	}
	t := proxy.Table{Generation: 1, Stable: proxy.Backend{Version: "stable", Upstreams: strings.Split(stable, ",")}, Weight: weight}
	if canary != "" {
		t.Canary = &proxy.Backend{Version: "canary", Upstreams: strings.Split(canary, ",")}
	}
	if _, err := p.Update(t); err != nil {
		return err
	}
	if err := p.Listen(ctx, lc); err != nil {
		return err
	}
	fmt.Println("proxybench listening on", p.Addr())
	<-ctx.Done()
	return p.Close(context.WithoutCancel(ctx))
}
