// Package secret resolves the secrets a spec refers to — webhook signing
// keys and notification URLs — and keeps them out of output.
//
// A spec never holds a secret itself: it names an environment variable
// ("${SLACK_WEBHOOK}") or a file (secretFile, urlFile). A Resolver turns those
// references into values and tells its Redactor about every value it hands
// out; the Redactor replaces known values with "[redacted]" in any string,
// error or log record, so the shell can pass logs, events and API output
// through it. Errors name the field and the variable or file, never the value.
//
// Files: the value is the file's content with one trailing newline ("\n" or
// "\r\n") removed. Symbolic links are followed (Kubernetes mounts secrets
// through them). A file that its group or others may write is refused,
// because whoever can change it can redirect notifications or forge
// signatures. A file others may read is accepted by default, because
// Kubernetes mounts secret volumes 0644 unless told otherwise and protects
// them with the directory instead; set Resolver.Private to refuse those too,
// as ssh does for private keys.
//
// The package may import the standard library only.
package secret
