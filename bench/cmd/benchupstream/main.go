// Command benchupstream is the small upstream of bench/proxy.sh: it answers
// every request with a short fixed body naming itself.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9001", "address to listen on")
	name := flag.String("name", "v1", "name in the response body")
	flag.Parse()
	body := []byte("hello from " + *name + "\n")
	length := strconv.Itoa(len(body))
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain"}
		w.Header()["Content-Length"] = []string{length}
		w.Write(body)
	})
	if err := http.ListenAndServe(*listen, h); err != nil {
		fmt.Fprintln(os.Stderr, "benchupstream:", err)
		os.Exit(1)
	}
}
