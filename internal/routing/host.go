package routing

import (
	"fmt"
	"strings"
)

// maxLowerBuf bounds the host names Match lower-cases on the stack; DNS
// names are at most 253 bytes.
const maxLowerBuf = 255

// host returns the prefixes of the most specific host that has routes and
// matches the request's Host header, or nil.
func (t *Table[T]) host(header string) *prefixes {
	h := strings.TrimSuffix(stripPort(header), ".")
	if !hasUpper(h) {
		return lookupHost(t, h)
	}
	if len(h) <= maxLowerBuf {
		var buf [maxLowerBuf]byte
		b := buf[:len(h)]
		for i := range len(h) {
			b[i] = lower(h[i])
		}
		return lookupHost(t, b)
	}
	return lookupHost(t, lowerString(h))
}

// lookupHost finds the prefixes for a canonical host name h. It takes a
// []byte as well as a string so that Match can look up a name it
// lower-cased into a buffer: m[string(b)] does not allocate.
func lookupHost[T any, S string | []byte](t *Table[T], h S) *prefixes {
	if p, ok := t.exact[string(h)]; ok {
		return p
	}
	if len(t.wild) > 0 {
		// The suffix after the first dot is the longest. A wildcard
		// stands for at least one non-empty label, so the dot is not at
		// 0, and suffixes longer than every wildcard's are skipped.
		for i := max(1, len(h)-1-t.maxWild); i < len(h); i++ {
			if h[i] == '.' {
				if p, ok := t.wild[string(h[i+1:])]; ok {
					return p
				}
			}
		}
	}
	return t.anyHost
}

// stripPort removes a port from a Host header and the brackets around an
// IPv6 literal. A name with several colons and no brackets is taken to be
// a bare IPv6 literal and kept whole.
func stripPort(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i >= 0 {
			return h[1:i]
		}
		return h
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h, ':') == i {
		return h[:i]
	}
	return h
}

// canonicalHost returns a route's host as Match looks it up: lower-case,
// without a trailing dot or IPv6 brackets, and for a wildcard the suffix
// after "*.".
func canonicalHost(host string) (h string, wildcard bool, err error) {
	if host == "" {
		return "", false, nil
	}
	h = host
	if strings.HasPrefix(h, "[") {
		if !strings.HasSuffix(h, "]") {
			return "", false, fmt.Errorf("host %q: a bracketed IPv6 literal ends with ']' and carries no port", host)
		}
		h = h[1 : len(h)-1]
	} else if strings.Count(h, ":") == 1 {
		return "", false, fmt.Errorf("host %q carries a port; routes match host names only", host)
	}
	h = lowerString(strings.TrimSuffix(h, "."))
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		h, wildcard = rest, true
	}
	switch {
	case h == "":
		return "", false, fmt.Errorf("host %q names no host", host)
	case strings.ContainsRune(h, '*'):
		return "", false, fmt.Errorf("host %q: a wildcard host is written *.example.com", host)
	case strings.ContainsAny(h, "/?#@[]"):
		return "", false, fmt.Errorf("host %q is not a host name", host)
	}
	for i := range len(h) {
		if h[i] <= ' ' || h[i] == 0x7f {
			return "", false, fmt.Errorf("host %q contains a space or control character", host)
		}
	}
	return h, wildcard, nil
}

func hasUpper(s string) bool {
	for i := range len(s) {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// lowerString lower-cases ASCII letters only; unlike strings.ToLower it
// leaves other bytes, valid UTF-8 or not, alone.
func lowerString(s string) string {
	if !hasUpper(s) {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		b[i] = lower(c)
	}
	return string(b)
}
