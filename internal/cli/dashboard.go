package cli

import "io/fs"

// dashboard is the web dashboard's files (nil: the server's placeholder).
func dashboard() fs.FS { return nil }
