package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herd-cluster/herd/api"
)

// KVSource delivers the key/value pairs under a prefix; the gateway reads
// TLS certificates from it.
type KVSource interface {
	// KVList returns the pairs under prefix once their index is above
	// index (blocking until then, or until ctx ends), and their index.
	KVList(ctx context.Context, prefix string, index uint64) ([]*api.KVPair, uint64, error)
}

// CertFile names a certificate chain and its private key, PEM files.
type CertFile struct {
	CertFile, KeyFile string
}

// LoadCertFile reads and parses a certificate file pair.
func LoadCertFile(f CertFile) (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("certificate %s with key %s: %w", f.CertFile, f.KeyFile, err)
	}
	return leafed(&c)
}

// parseKVCert parses a KV value: a PEM certificate chain followed by its
// PEM private key.
func parseKVCert(v []byte) (*tls.Certificate, error) {
	c, err := tls.X509KeyPair(v, v)
	if err != nil {
		return nil, err
	}
	return leafed(&c)
}

func leafed(c *tls.Certificate) (*tls.Certificate, error) {
	if c.Leaf == nil {
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			return nil, err
		}
		c.Leaf = leaf
	}
	return c, nil
}

// certSet is an immutable lookup table of certificates by server name.
type certSet struct {
	exact map[string]*tls.Certificate // lower-case DNS names
	wild  map[string]*tls.Certificate // "*.example.com" stored as "example.com"
	def   *tls.Certificate
}

func newCertSet(certs []*tls.Certificate) *certSet {
	s := &certSet{exact: map[string]*tls.Certificate{}, wild: map[string]*tls.Certificate{}}
	for _, c := range certs {
		if s.def == nil {
			s.def = c
		}
		names := c.Leaf.DNSNames
		if len(names) == 0 && c.Leaf.Subject.CommonName != "" {
			names = []string{c.Leaf.Subject.CommonName}
		}
		for _, n := range names {
			n = strings.ToLower(n)
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				if s.wild[rest] == nil {
					s.wild[rest] = c
				}
			} else if s.exact[n] == nil {
				s.exact[n] = c
			}
		}
	}
	return s
}

// lookup picks the certificate for a server name: an exact DNS name, then
// a wildcard matching one label, then the default (the first one).
func (s *certSet) lookup(name string) *tls.Certificate {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if name != "" {
		if c := s.exact[name]; c != nil {
			return c
		}
		if i := strings.IndexByte(name, '.'); i > 0 {
			if c := s.wild[name[i+1:]]; c != nil {
				return c
			}
		}
	}
	return s.def
}

// certStore holds the gateway's TLS certificates, from files and from the
// KV store, and reloads them when they change.
type certStore struct {
	logger *slog.Logger
	set    atomic.Pointer[certSet]

	// mu guards files and kv, the sources the set is built from.
	mu    sync.Mutex
	files []*fileCert
	kv    map[string]*tls.Certificate
}

// fileCert is one certificate file pair and what was loaded from it.
type fileCert struct {
	f          CertFile
	cert       *tls.Certificate
	certMod    time.Time
	keyMod     time.Time
	certSz, kz int64
}

var errNoCertificate = errors.New("no certificate")

func newCertStore(files []CertFile, logger *slog.Logger) (*certStore, error) {
	s := &certStore{logger: logger, kv: map[string]*tls.Certificate{}}
	for i, f := range files {
		fc := &fileCert{f: f}
		fc.stat()
		c, err := LoadCertFile(f)
		if err != nil {
			return nil, fmt.Errorf("TLS certificate %d: %w", i, err)
		}
		fc.cert = c
		s.files = append(s.files, fc)
	}
	s.rebuild()
	return s, nil
}

// stat records the files' modification times and sizes; it reports
// whether they changed since the last call.
func (fc *fileCert) stat() bool {
	var cm, km time.Time
	var cs, ks int64
	if st, err := os.Stat(fc.f.CertFile); err == nil {
		cm, cs = st.ModTime(), st.Size()
	}
	if st, err := os.Stat(fc.f.KeyFile); err == nil {
		km, ks = st.ModTime(), st.Size()
	}
	changed := !cm.Equal(fc.certMod) || !km.Equal(fc.keyMod) || cs != fc.certSz || ks != fc.kz
	fc.certMod, fc.keyMod, fc.certSz, fc.kz = cm, km, cs, ks
	return changed
}

// rebuild swaps in a new lookup table: files first, in order, then KV
// certificates by key. Callers hold mu (or own s exclusively).
func (s *certStore) rebuild() {
	var certs []*tls.Certificate
	for _, fc := range s.files {
		certs = append(certs, fc.cert)
	}
	keys := make([]string, 0, len(s.kv))
	for k := range s.kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		certs = append(certs, s.kv[k])
	}
	s.set.Store(newCertSet(certs))
}

// getCertificate implements tls.Config.GetCertificate.
func (s *certStore) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := s.set.Load().lookup(hello.ServerName); c != nil {
		return c, nil
	}
	return nil, errNoCertificate
}

// reloadFiles re-reads the files whose modification time changed. A file
// that no longer parses is logged and its old certificate kept.
func (s *certStore) reloadFiles() {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, fc := range s.files {
		if !fc.stat() {
			continue
		}
		c, err := LoadCertFile(fc.f)
		if err != nil {
			s.logger.Error("gateway: TLS certificate not reloaded; keeping the old one", "cert_file", fc.f.CertFile, "err", err)
			continue
		}
		fc.cert, changed = c, true
		s.logger.Info("gateway: TLS certificate reloaded", "cert_file", fc.f.CertFile, "names", c.Leaf.DNSNames)
	}
	if changed {
		s.rebuild()
	}
}

// applyKV makes the KV certificates those of pairs. A pair that does not
// parse is logged; the certificate it had before (if any) is kept.
func (s *certStore) applyKV(pairs []*api.KVPair) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[string]*tls.Certificate, len(pairs))
	for _, p := range pairs {
		if len(p.Value) == 0 {
			continue // a "directory" key
		}
		c, err := parseKVCert(p.Value)
		if err != nil {
			if old := s.kv[p.Key]; old != nil {
				next[p.Key] = old
			}
			s.logger.Error("gateway: TLS certificate in KV store not usable; keeping the old one if any", "key", p.Key, "err", err)
			continue
		}
		next[p.Key] = c
	}
	s.kv = next
	s.rebuild()
}

// watchFiles checks the certificate files every interval until ctx ends.
func (s *certStore) watchFiles(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.reloadFiles()
		}
	}
}

// watchKV follows the certificates under prefix until ctx ends.
func (s *certStore) watchKV(ctx context.Context, src KVSource, prefix string) {
	var index uint64
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		pairs, idx, err := src.KVList(ctx, prefix, index)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.logger.Warn("gateway: reading TLS certificates from the KV store failed; retrying", "prefix", prefix, "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if idx < index {
			idx = 0
		}
		if idx != index || index == 0 {
			s.applyKV(pairs)
		}
		index = idx
	}
}
