package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

const maxChunkLine = 1024

// errChunk marks malformed chunked framing (the peer's fault).
var errChunk = errors.New("malformed chunked encoding")

// chunkedReader decodes a chunked body from br, validating the framing
// strictly: hex size (no sign, no overflow), optional extensions of
// visible characters, CRLF after the size line and after the data.
// Trailer fields are validated and kept in trailer (raw, CRLF-terminated).
type chunkedReader struct {
	br       *bufio.Reader
	n        int64 // bytes left in the current chunk
	started  bool
	done     bool
	trailer  []byte
	maxTrail int
}

func (cr *chunkedReader) reset(br *bufio.Reader, maxTrailer int) {
	cr.br, cr.n, cr.started, cr.done = br, 0, false, false
	cr.trailer = cr.trailer[:0]
	cr.maxTrail = maxTrailer
}

// Read returns decoded body bytes, io.EOF after the last chunk and trailer.
func (cr *chunkedReader) Read(p []byte) (int, error) {
	if cr.done {
		return 0, io.EOF
	}
	if cr.n == 0 {
		if cr.started {
			if err := cr.crlf(); err != nil {
				return 0, err
			}
		}
		cr.started = true
		n, err := cr.sizeLine()
		if err != nil {
			return 0, err
		}
		if n == 0 {
			if err := cr.readTrailer(); err != nil {
				return 0, err
			}
			cr.done = true
			return 0, io.EOF
		}
		cr.n = n
	}
	if int64(len(p)) > cr.n {
		p = p[:cr.n]
	}
	m, err := cr.br.Read(p)
	cr.n -= int64(m)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if cr.n == 0 && err == nil && cr.br.Buffered() >= 2 {
		// Consume the CRLF after the data now, so that "nothing buffered"
		// reliably means the next read would block (callers flush then).
		if err = cr.crlf(); err == nil {
			cr.started = false
		}
	}
	return m, err
}

func (cr *chunkedReader) crlf() error {
	b, err := cr.br.ReadSlice('\n')
	if err != nil {
		return eofUnexpected(err)
	}
	if len(b) != 2 || b[0] != '\r' {
		return fmt.Errorf("missing CRLF after chunk data: %w", errChunk)
	}
	return nil
}

func (cr *chunkedReader) sizeLine() (int64, error) {
	b, err := cr.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull || len(b) > maxChunkLine {
		return 0, fmt.Errorf("chunk size line too long: %w", errChunk)
	}
	if err != nil {
		return 0, eofUnexpected(err)
	}
	if len(b) < 3 || b[len(b)-2] != '\r' {
		return 0, fmt.Errorf("chunk size line not CRLF-terminated: %w", errChunk)
	}
	b = b[:len(b)-2]
	var n int64
	i := 0
	for ; i < len(b); i++ {
		c := b[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			goto ext
		}
		if i >= 15 {
			return 0, fmt.Errorf("chunk size too large: %w", errChunk)
		}
		n = n<<4 | int64(d)
	}
ext:
	if i == 0 {
		return 0, fmt.Errorf("invalid chunk size: %w", errChunk)
	}
	rest := b[i:]
	for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		rest = rest[1:]
	}
	if len(rest) > 0 && rest[0] != ';' {
		return 0, fmt.Errorf("invalid chunk size: %w", errChunk)
	}
	for _, c := range rest {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return 0, fmt.Errorf("invalid chunk extension: %w", errChunk)
		}
	}
	return n, nil
}

func (cr *chunkedReader) readTrailer() error {
	for {
		b, err := cr.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return fmt.Errorf("trailer line too long: %w", errChunk)
		}
		if err != nil {
			return eofUnexpected(err)
		}
		if len(b) < 2 || b[len(b)-2] != '\r' {
			return fmt.Errorf("trailer line not CRLF-terminated: %w", errChunk)
		}
		line := b[:len(b)-2]
		if len(line) == 0 {
			return nil
		}
		if !validFieldLine(line) {
			return fmt.Errorf("invalid trailer field: %w", errChunk)
		}
		if len(cr.trailer)+len(b) > cr.maxTrail {
			return fmt.Errorf("trailer too large: %w", errChunk)
		}
		cr.trailer = append(cr.trailer, b...)
	}
}

// validFieldLine checks "name: value" with a token name and no control bytes.
func validFieldLine(line []byte) bool {
	colon := -1
	for i, c := range line {
		if c == ':' {
			colon = i
			break
		}
		if !isTchar(c) {
			return false
		}
	}
	if colon <= 0 {
		return false
	}
	for _, c := range line[colon+1:] {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func eofUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// appendChunkHeader appends "<hex n>\r\n".
func appendChunkHeader(b []byte, n int) []byte {
	const hex = "0123456789abcdef"
	var tmp [16]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = hex[n&15]
		n >>= 4
		if n == 0 {
			break
		}
	}
	b = append(b, tmp[i:]...)
	return append(b, '\r', '\n')
}
