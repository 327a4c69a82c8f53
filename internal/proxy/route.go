package proxy

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// compiled is a Table ready for the hot path: rules compiled, pools and
// series resolved. It is immutable once published.
type compiled struct {
	table    Table
	stable   *backend
	canary   *backend
	weight   uint64
	matchers []*matcher
	sticky   string
	maxAge   int // seconds; 0 for a session cookie
	hashHdr  string
	hashCkie string
	salt     uint64
	mirror   uint64
	shield   bool
}

// backend is one version of a compiled table.
type backend struct {
	version string
	role    string
	pool    *pool
	series  [numKinds]*series
}

// decision is where one request goes.
type decision struct {
	be   *backend
	kind Kind
	// fallback: the request was meant for the canary, which has no healthy
	// upstream.
	fallback bool
	// cookie is the sticky cookie to set, or "".
	cookie string
}

// route decides where r goes, in this order: a sticky cookie naming the
// canary; match rules; the weighted choice.
func (t *compiled) route(r *http.Request, now int64, rnd func() uint64) decision {
	if t.canary == nil {
		return decision{be: t.stable, kind: KindWeighted}
	}
	bucket := -1
	stuck := ""
	if t.sticky != "" {
		if c, err := r.Cookie(t.sticky); err == nil {
			v, b := parseSticky(c.Value)
			switch v {
			case t.canary.version:
				return t.toCanary(KindWeighted, now)
			case t.stable.version:
				stuck, bucket = v, b
			}
		}
	}
	var q url.Values
	for _, m := range t.matchers {
		if m.matches(r, &q) {
			return t.toCanary(KindMatched, now)
		}
	}
	if bucket < 0 {
		bucket = t.bucket(r, rnd)
	}
	var d decision
	if uint64(bucket) < t.weight {
		d = t.toCanary(KindWeighted, now)
	} else {
		d = decision{be: t.stable, kind: KindWeighted}
	}
	if t.sticky != "" && !d.fallback && d.be.version != stuck {
		d.cookie = t.stickyCookie(d.be.version, bucket)
	}
	return d
}

func (t *compiled) toCanary(kind Kind, now int64) decision {
	if t.canary.pool.available(now) {
		return decision{be: t.canary, kind: kind}
	}
	return decision{be: t.stable, kind: kind, fallback: true}
}

// bucket places a request in 0..99: by its hash key when HashOn is set and
// the request has the key, at random otherwise. The canary gets the buckets
// below its weight, which makes the choice monotone in the weight.
func (t *compiled) bucket(r *http.Request, rnd func() uint64) int {
	key := ""
	switch {
	case t.hashHdr != "":
		key = r.Header.Get(t.hashHdr)
	case t.hashCkie != "":
		if c, err := r.Cookie(t.hashCkie); err == nil {
			key = c.Value
		}
	}
	if key == "" {
		return int(rnd() % 100)
	}
	return int(hashKey(t.salt, key) % 100)
}

// hashKey is FNV-1a over the salt and the key, finished with splitmix64's
// mixer so that every bit of the result depends on every bit of the input.
// It is stable across processes and releases of aviary.
func hashKey(salt uint64, key string) uint64 {
	h := uint64(14695981039346656037) ^ salt
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// saltOf derives the hash salt from the canary's version, so that each
// release picks its own cohort of keys.
func saltOf(version string) uint64 { return hashKey(0, version) }

// The sticky cookie's value is "VERSION:BUCKET": the version the client got
// and its place in the weighted split, kept so that a client on stable moves
// to the canary at most once as the weight grows.
func (t *compiled) stickyCookie(version string, bucket int) string {
	var b strings.Builder
	b.WriteString(t.sticky)
	b.WriteByte('=')
	b.WriteString(version)
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(bucket))
	b.WriteString("; Path=/; HttpOnly; SameSite=Lax")
	if t.maxAge > 0 {
		b.WriteString("; Max-Age=")
		b.WriteString(strconv.Itoa(t.maxAge))
	}
	return b.String()
}

func parseSticky(v string) (version string, bucket int) {
	i := strings.LastIndexByte(v, ':')
	if i < 0 {
		return v, -1
	}
	b, err := strconv.Atoi(v[i+1:])
	if err != nil || b < 0 || b > 99 {
		return v[:i], -1
	}
	return v[:i], b
}
