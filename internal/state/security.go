package state

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
)

// PKI is the cluster's certificate authority as the replicated state keeps
// it: the CA certificate in the clear and its private key sealed under the
// cluster secret that only servers hold, so a copy of the log or of a
// snapshot gives away no key. The gossip keyring is sealed the same way.
type PKI struct {
	// Name is always "cluster": the table holds one row.
	Name   string `json:"name"`
	CACert string `json:"ca_cert"`
	CAHash string `json:"ca_hash"`
	// CAKey is the sealed PEM private key; empty when the operator keeps
	// the CA key (their own CA).
	CAKey []byte `json:"ca_key,omitempty"`
	// Keyring is the sealed gossip keyring (JSON list of base64 keys,
	// primary first); KeyringIndex is where it last changed.
	Keyring      []byte `json:"keyring,omitempty"`
	KeyringIndex uint64 `json:"keyring_index"`
}

// ACLTokenEntry is an API token as stored: the secret only as its hash.
type ACLTokenEntry struct {
	api.ACLToken
	SecretHash string `json:"secret_hash"`
}

// JoinTokenEntry is a join token as stored: the secret only as its hash.
type JoinTokenEntry struct {
	api.JoinToken
	SecretHash string `json:"secret_hash"`
}

// ErrExists is returned for a write that would create what exists already.
var ErrExists = errors.New("already exists")

const (
	metaACLBootstrap = "acl_bootstrap"
	pkiRow           = "cluster"
)

func securityTables() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tablePKI: {
			Name: tablePKI,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
			},
		},
		tableJoinTokens: {
			Name: tableJoinTokens,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
			},
		},
		tableACLPolicies: {
			Name: tableACLPolicies,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
			},
		},
		tableACLTokens: {
			Name: tableACLTokens,
			Indexes: map[string]*memdb.IndexSchema{
				"id":     {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "AccessorID"}},
				"secret": {Name: "secret", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "SecretHash"}},
			},
		},
	}
}

// PKIInit records the cluster CA at idx unless one is recorded already
// (the first one wins; a second init is a no-op, as for the cluster ID).
func (s *Store) PKIInit(idx uint64, p *PKI) error {
	if p == nil || p.CACert == "" || p.CAHash == "" {
		return errors.New("pki.init without a CA certificate")
	}
	txn := s.writeTxn()
	defer txn.Abort()
	raw, err := txn.First(tablePKI, "id", pkiRow)
	if err != nil {
		return fmt.Errorf("pki init: %w", err)
	}
	if raw != nil {
		return nil
	}
	n := *p
	n.Name = pkiRow
	n.KeyringIndex = idx
	if err := txn.Insert(tablePKI, &n); err != nil {
		return fmt.Errorf("pki init: %w", err)
	}
	if err := setIndex(txn, tablePKI, idx); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// PKISetKeyring replaces the sealed gossip keyring at idx.
func (s *Store) PKISetKeyring(idx uint64, sealed []byte) error {
	if len(sealed) == 0 {
		return errors.New("pki.keyring without a keyring")
	}
	txn := s.writeTxn()
	defer txn.Abort()
	raw, err := txn.First(tablePKI, "id", pkiRow)
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	if raw == nil {
		return fmt.Errorf("keyring: the cluster has no CA yet: %w", ErrNotFound)
	}
	n := *raw.(*PKI)
	n.Keyring, n.KeyringIndex = sealed, idx
	if err := txn.Insert(tablePKI, &n); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	if err := setIndex(txn, tablePKI, idx); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// PKI returns the cluster CA record (nil before pki.init) and the table
// index, watching for changes when ws is set.
func (s *Store) PKI(ws memdb.WatchSet) (uint64, *PKI, error) {
	txn := s.readTxn()
	idx, err := maxIndex(txn, ws, tablePKI)
	if err != nil {
		return 0, nil, err
	}
	ch, raw, err := txn.FirstWatch(tablePKI, "id", pkiRow)
	if err != nil {
		return 0, nil, fmt.Errorf("pki: %w", err)
	}
	if ws != nil {
		ws.Add(ch)
	}
	if raw == nil {
		return idx, nil, nil
	}
	return idx, raw.(*PKI), nil
}

// JoinTokenCreate records a join token at idx.
func (s *Store) JoinTokenCreate(idx uint64, t *JoinTokenEntry) error {
	if t == nil || t.ID == "" || t.SecretHash == "" {
		return errors.New("join_token.create without a token")
	}
	txn := s.writeTxn()
	defer txn.Abort()
	raw, err := txn.First(tableJoinTokens, "id", t.ID)
	if err != nil {
		return fmt.Errorf("join token: %w", err)
	}
	if raw != nil {
		return fmt.Errorf("join token %s: %w", t.ID, ErrExists)
	}
	n := *t
	n.Token = ""
	n.CreateIndex = idx
	if err := txn.Insert(tableJoinTokens, &n); err != nil {
		return fmt.Errorf("join token: %w", err)
	}
	if err := s.addEvent(txn, idx, api.EventTokenCreated, "join:"+n.ID, fmt.Sprintf("join token %s for %s nodes created", n.ID, n.Role),
		map[string]string{"kind": "join", "role": n.Role}); err != nil {
		return err
	}
	if err := setIndex(txn, tableJoinTokens, idx); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// JoinTokenDelete revokes a join token at idx; ErrNotFound if none.
func (s *Store) JoinTokenDelete(idx uint64, id string) error {
	return s.deleteRow(idx, tableJoinTokens, "join token", id, "join:"+id)
}

// JoinToken returns one join token, or nil.
func (s *Store) JoinToken(id string) (*JoinTokenEntry, error) {
	raw, err := s.readTxn().First(tableJoinTokens, "id", id)
	if err != nil || raw == nil {
		return nil, err
	}
	return raw.(*JoinTokenEntry), nil
}

// JoinTokens lists the join tokens by ID.
func (s *Store) JoinTokens(ws memdb.WatchSet) (uint64, []*JoinTokenEntry, error) {
	return listTable[*JoinTokenEntry](s, ws, tableJoinTokens)
}

// ACLBootstrap records the first management token at idx; it fails with
// ErrExists once ACLs have been bootstrapped.
func (s *Store) ACLBootstrap(idx uint64, t *ACLTokenEntry) error {
	txn := s.writeTxn()
	defer txn.Abort()
	raw, err := txn.First(tableMeta, "id", metaACLBootstrap)
	if err != nil {
		return fmt.Errorf("acl bootstrap: %w", err)
	}
	if raw != nil {
		return fmt.Errorf("ACLs were bootstrapped already (at index %s): %w", raw.(*metaEntry).Value, ErrExists)
	}
	if err := s.insertToken(txn, idx, t); err != nil {
		return err
	}
	if err := txn.Insert(tableMeta, &metaEntry{Name: metaACLBootstrap, Value: fmt.Sprint(idx)}); err != nil {
		return fmt.Errorf("acl bootstrap: %w", err)
	}
	if err := setIndex(txn, tableMeta, idx); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// ACLBootstrapped reports whether the first management token was made.
func (s *Store) ACLBootstrapped() bool {
	raw, err := s.readTxn().First(tableMeta, "id", metaACLBootstrap)
	return err == nil && raw != nil
}

// ACLTokenCreate records an API token at idx.
func (s *Store) ACLTokenCreate(idx uint64, t *ACLTokenEntry) error {
	txn := s.writeTxn()
	defer txn.Abort()
	if err := s.insertToken(txn, idx, t); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

func (s *Store) insertToken(txn *memdb.Txn, idx uint64, t *ACLTokenEntry) error {
	if t == nil || t.AccessorID == "" || t.SecretHash == "" {
		return errors.New("acl token without an accessor ID or secret hash")
	}
	for _, ix := range []struct{ index, val string }{{"id", t.AccessorID}, {"secret", t.SecretHash}} {
		raw, err := txn.First(tableACLTokens, ix.index, ix.val)
		if err != nil {
			return fmt.Errorf("acl token: %w", err)
		}
		if raw != nil {
			return fmt.Errorf("acl token %s: %w", t.AccessorID, ErrExists)
		}
	}
	n := *t
	n.SecretID = ""
	n.CreateIndex = idx
	if err := txn.Insert(tableACLTokens, &n); err != nil {
		return fmt.Errorf("acl token: %w", err)
	}
	kind := "policies " + strings.Join(n.Policies, ",")
	if n.Management {
		kind = "management"
	}
	if err := s.addEvent(txn, idx, api.EventTokenCreated, "acl:"+n.AccessorID, fmt.Sprintf("API token %s (%s) created", n.AccessorID, kind),
		map[string]string{"kind": "acl"}); err != nil {
		return err
	}
	return setIndex(txn, tableACLTokens, idx)
}

// ACLTokenDelete revokes an API token at idx; ErrNotFound if none.
func (s *Store) ACLTokenDelete(idx uint64, accessor string) error {
	return s.deleteRow(idx, tableACLTokens, "acl token", accessor, "acl:"+accessor)
}

// ACLTokenBySecret finds a token by the hash of its secret (nil if none)
// and returns the ACL tables' index with it.
func (s *Store) ACLTokenBySecret(hash string) (uint64, *ACLTokenEntry, error) {
	txn := s.readTxn()
	idx, err := maxIndex(txn, nil, tableACLTokens, tableACLPolicies)
	if err != nil {
		return 0, nil, err
	}
	raw, err := txn.First(tableACLTokens, "secret", hash)
	if err != nil || raw == nil {
		return idx, nil, err
	}
	return idx, raw.(*ACLTokenEntry), nil
}

// ACLIndex is the index of the last change to tokens or policies.
func (s *Store) ACLIndex() uint64 {
	idx, _ := maxIndex(s.readTxn(), nil, tableACLTokens, tableACLPolicies)
	return idx
}

// ACLTokens lists the API tokens by accessor ID.
func (s *Store) ACLTokens(ws memdb.WatchSet) (uint64, []*ACLTokenEntry, error) {
	return listTable[*ACLTokenEntry](s, ws, tableACLTokens)
}

// ACLPolicySet creates or replaces a policy at idx.
func (s *Store) ACLPolicySet(idx uint64, p *api.ACLPolicy) error {
	if p == nil || p.Name == "" {
		return errors.New("acl policy without a name")
	}
	txn := s.writeTxn()
	defer txn.Abort()
	raw, err := txn.First(tableACLPolicies, "id", p.Name)
	if err != nil {
		return fmt.Errorf("acl policy: %w", err)
	}
	n := *p
	n.CreateIndex, n.ModifyIndex = idx, idx
	if raw != nil {
		n.CreateIndex = raw.(*api.ACLPolicy).CreateIndex
	}
	if err := txn.Insert(tableACLPolicies, &n); err != nil {
		return fmt.Errorf("acl policy: %w", err)
	}
	if err := setIndex(txn, tableACLPolicies, idx); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// ACLPolicyDelete removes a policy at idx; ErrNotFound if none. Tokens
// that name it lose what it granted.
func (s *Store) ACLPolicyDelete(idx uint64, name string) error {
	return s.deleteRow(idx, tableACLPolicies, "acl policy", name, "")
}

// ACLPolicy returns one policy, or nil.
func (s *Store) ACLPolicy(name string) (*api.ACLPolicy, error) {
	raw, err := s.readTxn().First(tableACLPolicies, "id", name)
	if err != nil || raw == nil {
		return nil, err
	}
	return raw.(*api.ACLPolicy), nil
}

// ACLPolicies lists the policies by name.
func (s *Store) ACLPolicies(ws memdb.WatchSet) (uint64, []*api.ACLPolicy, error) {
	return listTable[*api.ACLPolicy](s, ws, tableACLPolicies)
}

// deleteRow deletes the row id of table at idx; ErrNotFound if none. A
// token's revocation is an event about revoked (when not empty).
func (s *Store) deleteRow(idx uint64, table, what, id, revoked string) error {
	txn := s.writeTxn()
	defer txn.Abort()
	raw, err := txn.First(table, "id", id)
	if err != nil {
		return fmt.Errorf("%s delete: %w", what, err)
	}
	if raw == nil {
		return fmt.Errorf("%s %q: %w", what, id, ErrNotFound)
	}
	if err := txn.Delete(table, raw); err != nil {
		return fmt.Errorf("%s delete: %w", what, err)
	}
	if revoked != "" {
		if err := s.addEvent(txn, idx, api.EventTokenRevoked, revoked, fmt.Sprintf("%s %s revoked", what, id), nil); err != nil {
			return err
		}
	}
	if err := setIndex(txn, table, idx); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// listTable returns every row of table in id order with the table's index.
func listTable[T any](s *Store, ws memdb.WatchSet, table string) (uint64, []T, error) {
	txn := s.readTxn()
	idx, err := maxIndex(txn, ws, table)
	if err != nil {
		return 0, nil, err
	}
	it, err := txn.Get(table, "id")
	if err != nil {
		return 0, nil, fmt.Errorf("listing %s: %w", table, err)
	}
	if ws != nil {
		ws.Add(it.WatchCh())
	}
	out := []T{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(T))
	}
	return idx, out, nil
}
