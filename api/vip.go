package api

import "time"

// VIP is a floating IP address that the cluster keeps on exactly one
// eligible node at a time (the holder), moving it to another when the
// holder dies, is cut off, pauses or stops serving. Clients use it as the
// one entry point that survives the loss of any gateway node.
type VIP struct {
	// Kind is "vip" in YAML files; it may be omitted in the API.
	Kind string `json:"kind,omitempty" yaml:"kind"`
	// Name identifies the VIP: lower-case letters, digits and '-'.
	Name string `json:"name" yaml:"name"`
	// Address is the address with its prefix length: "10.0.0.100/24" or
	// "fd00::100/64".
	Address string `json:"address" yaml:"address"`
	// Interface is the network interface the address goes on; empty
	// means the interface that holds the node's own address in the
	// address's subnet.
	Interface string `json:"interface,omitempty" yaml:"interface"`
	// Nodes lists the nodes that may hold the address; empty means any
	// node that matches Labels.
	Nodes []string `json:"nodes,omitempty" yaml:"nodes"`
	// Labels restricts eligibility to nodes with every one of these
	// labels.
	Labels map[string]string `json:"labels,omitempty" yaml:"labels"`
	// Priority ranks eligible nodes (higher first; default 100 each): a
	// free address goes to the highest alive one.
	Priority map[string]int `json:"priority,omitempty" yaml:"priority"`
	// Preempt moves the address back to a higher-priority node when one
	// becomes eligible; without it the holder keeps it.
	Preempt bool `json:"preempt,omitempty" yaml:"preempt"`
	// Lease is how long a holder keeps the address without renewing it
	// (default 800ms, between 100ms and 10s). A holder renews four times
	// per lease and removes the address itself, by its own clock, a
	// quarter of a lease before anyone else may take it.
	Lease Duration `json:"lease,omitempty" yaml:"lease"`
}

// VIPEntry is a VIP as the cluster records it.
type VIPEntry struct {
	VIP
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
	// Holder is the node that holds the address ("" when none does).
	Holder string `json:"holder,omitempty"`
	// HolderSince is when the holder took it.
	HolderSince time.Time `json:"holder_since,omitempty"`
	// Moves are the last changes of holder, oldest first.
	Moves []VIPMove `json:"moves,omitempty"`
}

// VIPMove is one change of a VIP's holder.
type VIPMove struct {
	At     time.Time `json:"at"`
	From   string    `json:"from,omitempty"`
	To     string    `json:"to,omitempty"`
	Reason string    `json:"reason,omitempty"`
}

// VIPLease is what a holder learns when it claims or renews a VIP.
type VIPLease struct {
	// Holder is the VIP's holder after the request.
	Holder string `json:"holder"`
	// Granted is true when the requesting node holds the VIP now.
	Granted bool `json:"granted"`
	// Lease is the VIP's lease duration.
	Lease Duration `json:"lease"`
	// Reason says why a request was not granted.
	Reason string `json:"reason,omitempty"`
}

// EventVIPMoved is the event type of a VIP changing holder.
const EventVIPMoved = "vip.moved"
