// Package state is the cluster state held by every server: go-memdb tables
// with indexes, typed write functions that the Raft FSM calls at a given log
// index, and read functions that return the index to block on and a watch set
// that fires when their answer may have changed.
package state

import (
	"github.com/hashicorp/go-memdb"
)

// Table names.
const (
	tableKV         = "kv"
	tableTombstones = "tombstones"
	tableSessions   = "sessions"
	tableMembers    = "members"
	tableIndex      = "index"
	tableMeta       = "meta"
	tableServices   = "services"
	tableNodes      = "nodes"
	tableReplicas   = "replicas"

	tablePKI         = "pki"
	tableJoinTokens  = "join_tokens"
	tableACLPolicies = "acl_policies"
	tableACLTokens   = "acl_tokens"
	tableEvents      = "events"
	tableVIPs        = "vips"

	// tableReaped is not a table but a row of the index table: the
	// highest index of a reaped tombstone.
	tableReaped = "tombstones_reaped"
)

// indexEntry records the Raft index of the last write to a table.
type indexEntry struct {
	Table string
	Index uint64
}

// tombstone remembers a deleted key so that a prefix listing's index never
// goes backwards when its newest key is deleted.
type tombstone struct {
	Key   string
	Index uint64
}

// metaEntry is a cluster-wide singleton value such as the cluster ID.
type metaEntry struct {
	Name  string
	Value string
}

func schema() *memdb.DBSchema {
	s := baseSchema()
	for name, t := range securityTables() {
		s.Tables[name] = t
	}
	s.Tables[tableEvents] = &memdb.TableSchema{
		Name: tableEvents,
		Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: eventSeqIndex{}},
		},
	}
	s.Tables[tableVIPs] = &memdb.TableSchema{
		Name: tableVIPs,
		Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
		},
	}
	return s
}

func baseSchema() *memdb.DBSchema {
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tableKV: {
			Name: tableKV,
			Indexes: map[string]*memdb.IndexSchema{
				"id":      {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Key"}},
				"session": {Name: "session", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "Session"}},
			},
		},
		tableTombstones: {
			Name: tableTombstones,
			Indexes: map[string]*memdb.IndexSchema{
				"id":    {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Key"}},
				"index": {Name: "index", Indexer: &memdb.UintFieldIndex{Field: "Index"}},
			},
		},
		tableSessions: {
			Name: tableSessions,
			Indexes: map[string]*memdb.IndexSchema{
				"id":   {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
				"node": {Name: "node", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "Node"}},
			},
		},
		tableMembers: {
			Name: tableMembers,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
			},
		},
		tableServices: {
			Name: tableServices,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
			},
		},
		tableNodes: {
			Name: tableNodes,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
			},
		},
		tableReplicas: {
			Name: tableReplicas,
			Indexes: map[string]*memdb.IndexSchema{
				"id":      {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
				"service": {Name: "service", Indexer: &memdb.StringFieldIndex{Field: "Service"}},
				"node":    {Name: "node", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "Node"}},
			},
		},
		tableIndex: {
			Name: tableIndex,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Table"}},
			},
		},
		tableMeta: {
			Name: tableMeta,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
			},
		},
	}}
}
