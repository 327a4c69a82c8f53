package cli

import (
	"io/fs"

	"aviary/web"
)

// dashboard is the web dashboard's files, embedded in the binary.
func dashboard() fs.FS { return web.FS() }
