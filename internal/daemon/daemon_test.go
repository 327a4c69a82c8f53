package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// One server per data directory: a second is refused with a message that
// names the directory and the holder, and starts once the first is gone.
func TestDataDirectoryIsLocked(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	first, err := Start(ctx, Options{DataDir: dir, Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(dir, "aviary.db"))
	if err != nil {
		t.Fatal(err)
	}

	_, err = Start(ctx, Options{DataDir: dir, Addr: "127.0.0.1:0"})
	if err == nil {
		t.Fatal("a second server on the same data directory started")
	}
	for _, want := range []string{dir, "in use by another aviary server", fmt.Sprintf("pid %d", os.Getpid())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	after, err := os.ReadFile(filepath.Join(dir, "aviary.db"))
	if err != nil || string(after) != string(before) {
		t.Errorf("the refused server touched the store (%v)", err)
	}

	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := first.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	second, err := Start(ctx, Options{DataDir: dir, Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("after the first server stopped: %v", err)
	}
	if err := second.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
}
