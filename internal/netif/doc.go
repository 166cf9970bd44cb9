// Package netif is the data plane of floating addresses (virtual IPs, as
// keepalived has them): the agent that wins a VIP puts the address on a
// network interface with Add and tells the link with Announce (gratuitous
// ARP for IPv4, an unsolicited neighbour advertisement for IPv6) that frames
// for it must now come to this host; the agent that loses it takes it off with
// Remove. InterfaceFor picks the interface when the VIP's configuration names
// none, and Capable says up front whether the process has the privileges all
// this needs.
//
// Every function acts in the network namespace of the calling OS thread. A
// caller that has switched a thread into another namespace must keep its
// goroutine on that thread (runtime.LockOSThread) while it calls them. The
// package keeps no state: addresses are read back from the kernel each time,
// so a restarted agent sees what an earlier one left behind.
//
// The package runs on Linux only; elsewhere every function returns an error
// that wraps errors.ErrUnsupported.
package netif
