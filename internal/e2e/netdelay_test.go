//go:build e2e && linux

package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// This kernel has no netem qdisc (nor fq, which would honour a BPF
// program's departure times), so a slow link is made in user space: the
// degraded container's outgoing packets go to an NFQUEUE (a firewall
// rule in its network namespace), and this process, bound to that queue,
// lets each one go after its delay, or drops it. That is netem's delay,
// jitter (with its reordering) and loss, on one node's egress.

// nfnetlink_queue's protocol (linux/netfilter/nfnetlink_queue.h).
const (
	nfnlSubsysQueue = 3
	nfqnlMsgPacket  = 0
	nfqnlMsgVerdict = 1
	nfqnlMsgConfig  = 2

	nfqaCfgCmd    = 1
	nfqaCfgParams = 2
	nfqaCfgMask   = 4
	nfqaCfgFlags  = 5

	nfqnlCfgCmdBind  = 1
	nfqnlCopyMeta    = 1
	nfqaCfgFFailOpen = 1

	nfqaPacketHdr  = 1
	nfqaVerdictHdr = 2

	nfDrop   = 0
	nfAccept = 1
)

// linkShaper delays (with jitter) or drops the packets of one NFQUEUE.
type linkShaper struct {
	fd     int
	queue  uint16
	delay  time.Duration
	jitter time.Duration
	loss   float64

	mu      sync.Mutex // serializes verdicts
	closed  bool
	done    chan struct{}
	timers  sync.WaitGroup
	delayed int
	dropped int
}

// openShaper binds queue in the network namespace of process pid.
func openShaper(pid string, queue uint16, delay, jitter time.Duration, loss float64) (*linkShaper, error) {
	fd, err := netlinkIn(pid)
	if err != nil {
		return nil, err
	}
	s := &linkShaper{fd: fd, queue: queue, delay: delay, jitter: jitter, loss: loss, done: make(chan struct{})}
	// Bind the queue, copy only metadata (the packet ID is all we need),
	// and let packets through rather than drop them should the queue
	// overflow.
	cmd := []byte{nfqnlCfgCmdBind, 0, 0, 0}
	params := make([]byte, 5)
	binary.BigEndian.PutUint32(params, 0)
	params[4] = nfqnlCopyMeta
	flags := binary.BigEndian.AppendUint32(nil, nfqaCfgFFailOpen)
	for _, attrs := range [][]byte{
		nlattr(nfqaCfgCmd, cmd),
		append(nlattr(nfqaCfgParams, params), append(nlattr(nfqaCfgMask, flags), nlattr(nfqaCfgFlags, flags)...)...),
	} {
		if err := s.request(nfqnlMsgConfig, attrs, true); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("configuring NFQUEUE %d: %w", queue, err)
		}
	}
	go s.run()
	return s, nil
}

// netlinkIn opens a netfilter netlink socket inside pid's network
// namespace (a socket keeps the namespace it was made in).
func netlinkIn(pid string) (int, error) {
	target, err := os.Open("/proc/" + pid + "/ns/net")
	if err != nil {
		return -1, err
	}
	defer target.Close()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return -1, err
	}
	defer self.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return -1, fmt.Errorf("entering the network namespace of %s: %w", pid, err)
	}
	fd, serr := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// This thread is in the wrong namespace: it must not run anything
		// else. Returning without unlocking makes the runtime end it.
		runtime.LockOSThread()
		return -1, fmt.Errorf("leaving the network namespace of %s: %w", pid, err)
	}
	if serr != nil {
		return -1, fmt.Errorf("netlink socket: %w", serr)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("netlink bind: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	// Reads wake up now and then, so that Close is noticed.
	tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return fd, nil
}

func nlattr(typ uint16, data []byte) []byte {
	b := make([]byte, 4, 4+len(data)+3)
	binary.NativeEndian.PutUint16(b, uint16(4+len(data)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// request sends one nfqueue message; with ack it waits for the kernel's
// answer (the read loop is not running yet).
func (s *linkShaper) request(msg uint16, attrs []byte, ack bool) error {
	b := make([]byte, 16+4, 16+4+len(attrs))
	flags := uint16(unix.NLM_F_REQUEST)
	if ack {
		flags |= unix.NLM_F_ACK
	}
	binary.NativeEndian.PutUint32(b, uint32(16+4+len(attrs)))
	binary.NativeEndian.PutUint16(b[4:], nfnlSubsysQueue<<8|msg)
	binary.NativeEndian.PutUint16(b[6:], flags)
	b[16] = unix.AF_UNSPEC
	b[17] = 0 // NFNETLINK_V0
	binary.BigEndian.PutUint16(b[18:], s.queue)
	b = append(b, attrs...)
	if err := unix.Sendto(s.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	if !ack {
		return nil
	}
	buf := make([]byte, 8192)
	n, _, err := unix.Recvfrom(s.fd, buf, 0)
	if err != nil {
		return err
	}
	if n >= 20 && binary.NativeEndian.Uint16(buf[4:]) == unix.NLMSG_ERROR {
		if code := int32(binary.NativeEndian.Uint32(buf[16:])); code != 0 {
			return unix.Errno(-code)
		}
		return nil
	}
	return errors.New("no acknowledgement from the kernel")
}

// run reads queued packets until Close and schedules their verdicts.
func (s *linkShaper) run() {
	defer close(s.done)
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(s.fd, buf, 0)
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return
		}
		if err != nil {
			continue // a timeout (to notice Close) or an overrun
		}
		for b := buf[:n]; len(b) >= 16; {
			l := int(binary.NativeEndian.Uint32(b))
			if l < 16 || l > len(b) {
				break
			}
			if binary.NativeEndian.Uint16(b[4:]) == nfnlSubsysQueue<<8|nfqnlMsgPacket && l >= 20 {
				if id, ok := packetID(b[20:l]); ok {
					s.schedule(id)
				}
			}
			b = b[(l+3)&^3:]
		}
	}
}

func packetID(attrs []byte) (uint32, bool) {
	for len(attrs) >= 4 {
		l := int(binary.NativeEndian.Uint16(attrs))
		typ := binary.NativeEndian.Uint16(attrs[2:]) & 0x3fff
		if l < 4 || l > len(attrs) {
			return 0, false
		}
		if typ == nfqaPacketHdr && l >= 8 {
			return binary.BigEndian.Uint32(attrs[4:]), true
		}
		attrs = attrs[(l+3)&^3:]
	}
	return 0, false
}

func (s *linkShaper) schedule(id uint32) {
	if rand.Float64() < s.loss {
		s.verdict(id, nfDrop)
		return
	}
	d := s.delay
	if s.jitter > 0 {
		d += time.Duration(rand.Int64N(int64(2*s.jitter))) - s.jitter
	}
	s.timers.Add(1)
	time.AfterFunc(d, func() {
		defer s.timers.Done()
		s.verdict(id, nfAccept)
	})
}

func (s *linkShaper) verdict(id uint32, v uint32) {
	hdr := binary.BigEndian.AppendUint32(nil, v)
	hdr = binary.BigEndian.AppendUint32(hdr, id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if v == nfDrop {
		s.dropped++
	} else {
		s.delayed++
	}
	_ = s.request(nfqnlMsgVerdict, nlattr(nfqaVerdictHdr, hdr), false)
}

// Close lets the packets still held go at once and unbinds the queue
// (the firewall rule must be gone first, or its packets pass unshaped:
// it is added with --queue-bypass). It returns how many packets were
// delayed and dropped.
func (s *linkShaper) Close() (delayed, dropped int) {
	s.timers.Wait() // the last packets leave after their delay
	s.mu.Lock()
	s.closed = true
	delayed, dropped = s.delayed, s.dropped
	s.mu.Unlock()
	<-s.done
	unix.Close(s.fd)
	return delayed, dropped
}
