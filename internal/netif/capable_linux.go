package netif

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Capable returns nil if the calling thread has the capabilities this
// package needs: CAP_NET_ADMIN to change addresses (Add, Remove) and
// CAP_NET_RAW to announce them (Announce). Otherwise its error names the
// missing ones.
func Capable() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData // version 3 sets are 64 bits in two halves
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	var missing []string
	for _, c := range []struct {
		bit  int
		name string
	}{
		{bit: unix.CAP_NET_ADMIN, name: "CAP_NET_ADMIN (to change addresses)"},
		{bit: unix.CAP_NET_RAW, name: "CAP_NET_RAW (to announce them)"},
	} {
		if data[c.bit/32].Effective&(1<<(c.bit%32)) == 0 {
			missing = append(missing, c.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("floating addresses need %s: run as root or grant the capabilities", strings.Join(missing, " and "))
	}
	return nil
}
