package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"
)

// upResponse is an upstream's response head and body. One lives in each
// upConn and is reused, so that reading a response allocates only its
// header map. It follows RFC 9112 section 6.3 for the body's length.
type upResponse struct {
	StatusCode int
	Header     http.Header
	// Trailer holds a chunked body's trailer fields once Body is at EOF.
	Trailer http.Header
	// ContentLength is -1 when the length is not known in advance.
	ContentLength int64
	// Close: the connection cannot carry another request.
	Close bool
	Body  upBody
}

// buffered reports whether the whole body is already read off the socket.
func (r *upResponse) buffered() bool {
	switch r.Body.mode {
	case bodyNone:
		return true
	case bodyLength:
		return int64(r.Body.br.Buffered()) >= r.Body.left
	}
	return false
}

// bodyMode is how an upstream response body is delimited.
type bodyMode uint8

const (
	bodyNone    bodyMode = iota
	bodyLength           // Content-Length
	bodyChunked          // Transfer-Encoding: chunked
	bodyEOF              // until the upstream closes the connection
)

// upBody reads a response body off the connection's buffered reader.
type upBody struct {
	mode    bodyMode
	br      *bufio.Reader
	tp      *textproto.Reader
	left    int64     // bodyLength: bytes still to read
	chunked io.Reader // bodyChunked
	resp    *upResponse
	done    bool
}

func (b *upBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	switch b.mode {
	case bodyNone:
		b.done = true
		return 0, io.EOF
	case bodyLength:
		if b.left == 0 {
			b.done = true
			return 0, io.EOF
		}
		if int64(len(p)) > b.left {
			p = p[:b.left]
		}
		n, err := b.br.Read(p)
		b.left -= int64(n)
		if err == io.EOF {
			return n, io.ErrUnexpectedEOF
		}
		if b.left == 0 && err == nil {
			b.done = true
			err = io.EOF
		}
		return n, err
	case bodyChunked:
		n, err := b.chunked.Read(p)
		if err == io.EOF {
			// The last chunk is followed by trailer fields and an empty line.
			tr, terr := b.tp.ReadMIMEHeader()
			if terr != nil {
				return n, fmt.Errorf("reading trailers: %w", terr)
			}
			if len(tr) > 0 {
				b.resp.Trailer = http.Header(tr)
			}
			b.done = true
		}
		return n, err
	}
	n, err := b.br.Read(p)
	if err == io.EOF {
		b.done = true
	}
	return n, err
}

var errMalformed = errors.New("malformed response from upstream")

// readResponse reads a response head from c for a request with the given
// method. 1xx answers other than 101 are skipped.
func (c *upConn) readResponse(method string) (*upResponse, error) {
	for {
		line, err := c.tp.ReadLine()
		if err != nil {
			return nil, err
		}
		status, minor, ok := parseStatusLine(line)
		if !ok {
			return nil, fmt.Errorf("%w: status line %q", errMalformed, truncate(line))
		}
		hdr, err := c.tp.ReadMIMEHeader()
		if err != nil {
			return nil, fmt.Errorf("%w: headers: %v", errMalformed, err)
		}
		if status >= 100 && status < 200 && status != http.StatusSwitchingProtocols {
			continue
		}
		r := &c.resp
		*r = upResponse{StatusCode: status, Header: http.Header(hdr), ContentLength: -1}
		r.Body = upBody{br: c.br, tp: c.tp, resp: r}
		if err := r.frame(method, minor); err != nil {
			return nil, err
		}
		return r, nil
	}
}

// frame decides how the body is delimited and whether the connection can
// be reused, refusing the ambiguous cases that enable response smuggling.
func (r *upResponse) frame(method string, minor int) error {
	h := r.Header
	r.Close = minor == 0 && !headerHasToken(h["Connection"], "keep-alive") || headerHasToken(h["Connection"], "close")
	switch {
	case method == http.MethodHead, r.StatusCode < 200, r.StatusCode == http.StatusNoContent, r.StatusCode == http.StatusNotModified:
		r.Body.mode = bodyNone
		r.ContentLength = 0
		return nil
	}
	if te, ok := h["Transfer-Encoding"]; ok {
		if len(te) != 1 || !strings.EqualFold(strings.TrimSpace(te[0]), "chunked") {
			return fmt.Errorf("%w: unsupported Transfer-Encoding %q", errMalformed, te)
		}
		delete(h, "Content-Length") // RFC 9112 6.1: Transfer-Encoding overrides it
		delete(h, "Transfer-Encoding")
		r.Body.mode = bodyChunked
		r.Body.chunked = httputil.NewChunkedReader(r.Body.br)
		return nil
	}
	if cl, ok := h["Content-Length"]; ok {
		n, err := parseContentLength(cl)
		if err != nil {
			return err
		}
		r.ContentLength = n
		r.Body.mode, r.Body.left = bodyLength, n
		return nil
	}
	r.Body.mode = bodyEOF
	r.Close = true
	return nil
}

func parseContentLength(values []string) (int64, error) {
	first := strings.TrimSpace(values[0])
	for _, v := range values[1:] {
		if strings.TrimSpace(v) != first {
			return 0, fmt.Errorf("%w: conflicting Content-Length values %q", errMalformed, values)
		}
	}
	n, err := strconv.ParseInt(first, 10, 64)
	if err != nil || n < 0 || first[0] == '+' {
		return 0, fmt.Errorf("%w: bad Content-Length %q", errMalformed, first)
	}
	return n, nil
}

// parseStatusLine parses "HTTP/1.x NNN reason".
func parseStatusLine(line string) (status, minor int, ok bool) {
	if len(line) < 12 || !strings.HasPrefix(line, "HTTP/1.") || line[8] != ' ' || len(line) > 12 && line[12] != ' ' {
		return 0, 0, false
	}
	switch line[7] {
	case '0':
	case '1':
		minor = 1
	default:
		return 0, 0, false
	}
	for _, ch := range line[9:12] {
		if ch < '0' || ch > '9' {
			return 0, 0, false
		}
		status = status*10 + int(ch-'0')
	}
	return status, minor, status >= 100
}

func headerHasToken(values []string, token string) bool {
	return len(values) > 0 && connectionListed(values, token)
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
