package state

import (
	"fmt"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
)

// MemberUpsert records a member's state at idx. StatusSince is kept when
// the status is unchanged.
func (s *Store) MemberUpsert(idx uint64, m *api.Member) error {
	txn := s.writeTxn()
	defer txn.Abort()
	raw, err := txn.First(tableMembers, "id", m.Name)
	if err != nil {
		return fmt.Errorf("member upsert: %w", err)
	}
	n := *m
	n.ModifyIndex = idx
	var old *api.Member
	if raw != nil {
		old = raw.(*api.Member)
		if old.Status == n.Status && !old.StatusSince.IsZero() {
			n.StatusSince = old.StatusSince
		}
	}
	if typ, msg := memberEvent(old, &n); typ != "" {
		if err := s.addEvent(txn, idx, typ, n.Name, msg, map[string]string{"role": n.Role}); err != nil {
			return err
		}
	}
	if err := txn.Insert(tableMembers, &n); err != nil {
		return fmt.Errorf("member upsert: %w", err)
	}
	if err := setIndex(txn, tableMembers, idx); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// MemberDelete forgets a member at idx.
func (s *Store) MemberDelete(idx uint64, name string) error {
	txn := s.writeTxn()
	defer txn.Abort()
	raw, err := txn.First(tableMembers, "id", name)
	if err != nil {
		return fmt.Errorf("member delete: %w", err)
	}
	if raw == nil {
		return nil
	}
	if err := txn.Delete(tableMembers, raw); err != nil {
		return fmt.Errorf("member delete: %w", err)
	}
	if err := setIndex(txn, tableMembers, idx); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// Member returns one recorded member, or nil.
func (s *Store) Member(name string) (*api.Member, error) {
	raw, err := s.readTxn().First(tableMembers, "id", name)
	if err != nil || raw == nil {
		return nil, err
	}
	return raw.(*api.Member), nil
}

// Members returns every recorded member by name.
func (s *Store) Members(ws memdb.WatchSet) (uint64, []*api.Member, error) {
	txn := s.readTxn()
	idx, err := maxIndex(txn, ws, tableMembers)
	if err != nil {
		return 0, nil, err
	}
	it, err := txn.Get(tableMembers, "id")
	if err != nil {
		return 0, nil, fmt.Errorf("members: %w", err)
	}
	out := []*api.Member{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*api.Member))
	}
	return max(idx, 1), out, nil
}
