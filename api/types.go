// Package api is herd's public Go client and the JSON wire types of its HTTP
// API. The KV and session types follow Consul's field names so that Consul
// clients work against herd unchanged.
package api

import "time"

// KVPair is one key in the KV store. Value is base64 in JSON.
type KVPair struct {
	Key         string
	CreateIndex uint64
	ModifyIndex uint64
	// LockIndex counts how many times the key's lock was acquired
	// (Consul's meaning).
	LockIndex uint64
	Flags     uint64
	Value     []byte
	// Session is the ID of the session holding the key's lock, if any.
	Session string `json:",omitempty"`
}

// Session behaviours: what happens to a session's locked keys when it is
// invalidated.
const (
	SessionBehaviorRelease = "release"
	SessionBehaviorDelete  = "delete"
)

// SessionEntry is a session: a lease that holds locks until it is destroyed
// or its TTL passes without a renewal. Fields other than those herd acts on
// (Checks, NodeChecks, ServiceChecks, Namespace) are accepted for Consul
// compatibility and echoed back.
type SessionEntry struct {
	CreateIndex uint64
	ModifyIndex uint64
	ID          string
	Name        string
	Node        string
	// LockDelay is how long a lock released by this session's
	// invalidation stays unavailable, in nanoseconds.
	LockDelay time.Duration
	Behavior  string
	// TTL is a Go duration string ("15s"); empty means no TTL.
	TTL           string
	Namespace     string         `json:",omitempty"`
	Checks        []string       `json:",omitempty"`
	NodeChecks    []string       `json:",omitempty"`
	ServiceChecks []ServiceCheck `json:",omitempty"`
}

// ServiceCheck is accepted in session requests for Consul compatibility.
type ServiceCheck struct {
	ID        string
	Namespace string
}

// Member states as recorded in the cluster state.
const (
	MemberAlive  = "alive"
	MemberFailed = "failed"
	MemberLeft   = "left"
)

// Member is one agent as seen by gossip.
type Member struct {
	Name    string
	Addr    string            // gossip address, host:port
	Status  string            // alive, failed, left
	Role    string            // server or client
	Zone    string            `json:",omitempty"`
	Labels  map[string]string `json:",omitempty"`
	APIAddr string            // host:port of the HTTP API
	RPCAddr string            `json:",omitempty"` // host:port of the Raft transport (servers)
	Version string
	// VIPs is true when the agent may hold floating addresses: it runs a
	// gateway, VIPs are not disabled, and it may change addresses.
	VIPs bool `json:",omitempty"`
	// ModifyIndex is the Raft index at which the leader last recorded
	// this member's state (0 when read from gossip only).
	ModifyIndex uint64 `json:",omitempty"`
	// StatusSince is when the recorded status last changed.
	StatusSince time.Time `json:",omitzero"`
}

// RaftServer is one entry of the Raft configuration.
type RaftServer struct {
	ID       string
	Node     string
	Address  string
	Leader   bool
	Voter    bool
	Suffrage string
	// Term, AppliedIndex and Lag (entries the server's applied index is
	// behind the leader's commit index) are filled with ?stats, from each
	// server's own report; StatsError says why they are missing.
	Term         string `json:",omitempty"`
	AppliedIndex uint64 `json:",omitempty"`
	Lag          *int64 `json:",omitempty"`
	StatsError   string `json:",omitempty"`
}

// RaftConfiguration is the answer of /v1/operator/raft/configuration.
type RaftConfiguration struct {
	Servers []RaftServer
	Index   uint64
}

// AgentSelf describes the agent answering the request.
type AgentSelf struct {
	Name       string
	Role       string
	Zone       string            `json:",omitempty"`
	Labels     map[string]string `json:",omitempty"`
	Version    string
	APIAddr    string
	GossipAddr string
	RPCAddr    string `json:",omitempty"`
	Leader     string // node name of the Raft leader, "" if unknown
	LeaderAddr string
	ClusterID  string            `json:",omitempty"`
	Raft       map[string]string `json:",omitempty"`
	UIURL      string
}

// Error is the JSON body of every error response.
type Error struct {
	Error string `json:"error"`
	// Status repeats the HTTP status code.
	Status int `json:"status"`
}

// Event is a significant change in the cluster, as the replicated state
// recorded it. Index is the event's place in the cluster-wide sequence
// (every server numbers them alike); RaftIndex the log entry that made it.
type Event struct {
	Index     uint64            `json:"index"`
	RaftIndex uint64            `json:"raft_index"`
	Time      time.Time         `json:"time"`
	Type      string            `json:"type"`
	Subject   string            `json:"subject"`
	Message   string            `json:"message,omitempty"`
	Attrs     map[string]string `json:"attrs,omitempty"`
}

// Event types.
const (
	EventMemberJoined    = "member.joined"
	EventMemberFailed    = "member.failed"
	EventMemberLeft      = "member.left"
	EventLeaderElected   = "leader.elected"
	EventReplicaPlaced   = "replica.placed"
	EventReplicaMoved    = "replica.moved"
	EventReplicaStarted  = "replica.started"
	EventReplicaFailed   = "replica.failed"
	EventReplicaLost     = "replica.lost"
	EventRolloutStarted  = "rollout.started"
	EventRolloutComplete = "rollout.completed"
	EventRolloutFailed   = "rollout.failed"
	EventRolloutReverted = "rollout.reverted"
	EventBackendEjected  = "backend.ejected"
	EventBackendRestored = "backend.restored"
	EventPanicMode       = "gateway.panic"
	EventTokenCreated    = "token.created"
	EventTokenRevoked    = "token.revoked"
	// EventsLost is not stored: a stream sends it when its reader fell
	// so far behind that the ring dropped events it had not read.
	EventsLost = "events.lost"
)

// EventTypes lists the types of stored events.
var EventTypes = []string{
	EventMemberJoined, EventMemberFailed, EventMemberLeft, EventLeaderElected,
	EventReplicaPlaced, EventReplicaMoved, EventReplicaStarted, EventReplicaFailed, EventReplicaLost,
	EventRolloutStarted, EventRolloutComplete, EventRolloutFailed, EventRolloutReverted,
	EventBackendEjected, EventBackendRestored, EventPanicMode,
	EventTokenCreated, EventTokenRevoked,
}
