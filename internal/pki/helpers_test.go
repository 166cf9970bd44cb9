package pki

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// ioTimeout bounds every network operation of a test.
const ioTimeout = 5 * time.Second

func newTestCA(t *testing.T, name string) *CA {
	t.Helper()
	ca, err := NewCA(name, 24*time.Hour)
	if err != nil {
		t.Fatalf("NewCA(%q): %v", name, err)
	}
	return ca
}

// node is a node's certificate material.
type node struct {
	certs   *Certs
	certPEM []byte
	keyPEM  []byte
	key     crypto.Signer
}

// newNode issues a node certificate from ca with a fresh ECDSA key, and
// builds its Certs trusting caBundle (ca's own certificate if nil).
func newNode(t *testing.T, ca *CA, name, role string, ips ...string) node {
	t.Helper()
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return newNodeWithKey(t, ca, nil, key, name, role, ips...)
}

func newNodeWithKey(t *testing.T, ca *CA, caBundle []byte, key crypto.Signer, name, role string, ips ...string) node {
	t.Helper()
	req := NodeRequest{Name: name, Role: role, PublicKey: key.Public(), TTL: time.Hour}
	for _, s := range ips {
		req.IPs = append(req.IPs, net.ParseIP(s))
	}
	certPEM, err := ca.Issue(req)
	if err != nil {
		t.Fatalf("Issue(%s): %v", name, err)
	}
	keyPEM, err := MarshalKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if caBundle == nil {
		caBundle = ca.CertPEM
	}
	certs, err := NewCerts(caBundle, certPEM, keyPEM)
	if err != nil {
		t.Fatalf("NewCerts(%s): %v", name, err)
	}
	return node{certs: certs, certPEM: certPEM, keyPEM: keyPEM, key: key}
}

// rawCert signs a certificate straight from a template with ca's key, for
// certificates Issue would refuse to make (expired, odd roles).
func rawCert(t *testing.T, ca *CA, tmpl *x509.Certificate, pub crypto.PublicKey) *x509.Certificate {
	t.Helper()
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		t.Fatalf("CreateCertificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// nodeTemplate is a node certificate template like the one Issue uses.
func nodeTemplate(name, role string, notBefore, notAfter time.Time) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: name, OrganizationalUnit: []string{role}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{name},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
}

// outcome is what both ends of one handshake saw.
type outcome struct {
	serverErr   error
	serverState tls.ConnectionState
	clientErr   error
	clientState tls.ConnectionState
}

// handshake runs one TLS handshake over loopback between a server using
// serverCfg and a client using clientCfg that dials 127.0.0.1. On success
// the server writes "ok" and the client reads it, so a rejection the
// server sends after the client's side of a TLS 1.3 handshake completes
// still shows up as a client error.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) outcome {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	type serverResult struct {
		err   error
		state tls.ConnectionState
	}
	done := make(chan serverResult, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			done <- serverResult{err: err}
			return
		}
		defer raw.Close()
		_ = raw.SetDeadline(time.Now().Add(ioTimeout))
		conn := tls.Server(raw, serverCfg)
		if err := conn.Handshake(); err != nil {
			done <- serverResult{err: err}
			return
		}
		state := conn.ConnectionState()
		if _, err := conn.Write([]byte("ok")); err != nil {
			done <- serverResult{err: err, state: state}
			return
		}
		// Wait for the client to finish reading and hang up.
		_, _ = io.Copy(io.Discard, conn)
		done <- serverResult{state: state}
	}()

	var out outcome
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	d := &tls.Dialer{Config: clientCfg}
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		out.clientErr = err
	} else {
		conn := c.(*tls.Conn)
		out.clientState = conn.ConnectionState()
		_ = conn.SetDeadline(time.Now().Add(ioTimeout))
		buf := make([]byte, 2)
		if _, err := io.ReadFull(conn, buf); err != nil {
			out.clientErr = err
		} else if string(buf) != "ok" {
			out.clientErr = errors.New("client read " + string(buf))
		}
		conn.Close()
	}
	ln.Close()
	r := <-done
	out.serverErr, out.serverState = r.err, r.state
	return out
}

// mustSucceed fails the test unless both sides of o succeeded.
func (o outcome) mustSucceed(t *testing.T) {
	t.Helper()
	if o.serverErr != nil || o.clientErr != nil {
		t.Fatalf("handshake failed: server: %v; client: %v", o.serverErr, o.clientErr)
	}
}

// mustFail fails the test unless the handshake failed; the side named by
// where ("server" or "client") must have an error containing want.
func (o outcome) mustFail(t *testing.T, where, want string) {
	t.Helper()
	err := o.serverErr
	if where == "client" {
		err = o.clientErr
	}
	if o.serverErr == nil && o.clientErr == nil {
		t.Fatalf("handshake succeeded, want it refused (%s)", want)
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("%s error = %v, want one containing %q (server: %v; client: %v)", where, err, want, o.serverErr, o.clientErr)
	}
}

// echoServer is a TLS echo server over loopback that keeps every
// connection open until the test ends.
type echoServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func startEchoServer(t *testing.T, cfg *tls.Config) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, raw)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer raw.Close()
				_ = raw.SetDeadline(time.Now().Add(ioTimeout))
				conn := tls.Server(raw, cfg)
				if err := conn.Handshake(); err != nil {
					return
				}
				_, _ = io.Copy(conn, conn)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// dial opens a TLS connection to addr and completes the handshake.
func dial(t *testing.T, addr string, cfg *tls.Config) *tls.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	d := &tls.Dialer{Config: cfg}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	conn := c.(*tls.Conn)
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(ioTimeout))
	return conn
}

// echo writes msg on conn and checks it comes back.
func echo(t *testing.T, conn *tls.Conn, msg string) {
	t.Helper()
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, buf); err != nil {
		t.Fatalf("read echo of %q: %v", msg, err)
	}
	if string(buf) != msg {
		t.Fatalf("echo = %q, want %q", buf, msg)
	}
}

// dialEcho dials addr, sends msg and checks it comes back. Unlike dial and
// echo it reports failure as an error, so goroutines may call it.
func dialEcho(addr string, cfg *tls.Config, msg string) error {
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	d := &tls.Dialer{Config: cfg}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return errors.New("echo mismatch: got " + string(buf))
	}
	return nil
}
