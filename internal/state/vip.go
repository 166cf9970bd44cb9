package state

import (
	"errors"
	"fmt"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
)

// maxVIPMoves is how many holder changes a VIP remembers.
const maxVIPMoves = 10

// VIPUpsert creates or replaces the spec of VIP v at idx, keeping its
// holder and history.
func (s *Store) VIPUpsert(idx uint64, v *api.VIP) error {
	if v == nil || v.Name == "" {
		return errors.New("vip.upsert without a vip")
	}
	txn := s.writeTxn()
	defer txn.Abort()
	raw, err := txn.First(tableVIPs, "id", v.Name)
	if err != nil {
		return fmt.Errorf("vip %s: %w", v.Name, err)
	}
	e := &api.VIPEntry{VIP: *v, CreateIndex: idx, ModifyIndex: idx}
	if raw != nil {
		old := raw.(*api.VIPEntry)
		e.CreateIndex, e.Holder, e.HolderSince, e.Moves = old.CreateIndex, old.Holder, old.HolderSince, old.Moves
	}
	if err := txn.Insert(tableVIPs, e); err != nil {
		return fmt.Errorf("vip %s: %w", v.Name, err)
	}
	if err := setIndex(txn, tableVIPs, idx); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// VIPDelete removes a VIP at idx; ErrNotFound if there is none.
func (s *Store) VIPDelete(idx uint64, name string) error {
	return s.deleteRow(idx, tableVIPs, "vip", name, "")
}

// VIPSetHolder records at idx that holder ("" for nobody) holds VIP name
// now, for reason; a change of holder is remembered in the VIP's moves and
// recorded as an event. ErrNotFound if there is no such VIP.
func (s *Store) VIPSetHolder(idx uint64, name, holder, reason string) error {
	txn := s.writeTxn()
	defer txn.Abort()
	raw, err := txn.First(tableVIPs, "id", name)
	if err != nil {
		return fmt.Errorf("vip %s: %w", name, err)
	}
	if raw == nil {
		return fmt.Errorf("vip %q: %w", name, ErrNotFound)
	}
	old := raw.(*api.VIPEntry)
	if old.Holder == holder {
		return nil
	}
	at := s.now()
	e := *old
	e.ModifyIndex, e.Holder, e.HolderSince = idx, holder, at
	e.Moves = append(append([]api.VIPMove(nil), old.Moves...), api.VIPMove{At: at, From: old.Holder, To: holder, Reason: reason})
	if n := len(e.Moves); n > maxVIPMoves {
		e.Moves = e.Moves[n-maxVIPMoves:]
	}
	if err := txn.Insert(tableVIPs, &e); err != nil {
		return fmt.Errorf("vip %s: %w", name, err)
	}
	msg := fmt.Sprintf("vip %s (%s) moved from %s to %s: %s", name, e.Address, orNobody(old.Holder), orNobody(holder), reason)
	if err := s.addEvent(txn, idx, api.EventVIPMoved, "vip:"+name, msg, map[string]string{"from": old.Holder, "to": holder, "reason": reason}); err != nil {
		return err
	}
	if err := setIndex(txn, tableVIPs, idx); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

func orNobody(n string) string {
	if n == "" {
		return "nobody"
	}
	return n
}

// VIP returns one VIP, or nil, with the index to block on.
func (s *Store) VIP(ws memdb.WatchSet, name string) (uint64, *api.VIPEntry, error) {
	txn := s.readTxn()
	idx, err := maxIndex(txn, ws, tableVIPs)
	if err != nil {
		return 0, nil, err
	}
	ch, raw, err := txn.FirstWatch(tableVIPs, "id", name)
	if err != nil {
		return 0, nil, fmt.Errorf("vip %s: %w", name, err)
	}
	if ws != nil {
		ws.Add(ch)
	}
	if raw == nil {
		return idx, nil, nil
	}
	return idx, raw.(*api.VIPEntry), nil
}

// VIPs lists the VIPs by name.
func (s *Store) VIPs(ws memdb.WatchSet) (uint64, []*api.VIPEntry, error) {
	return listTable[*api.VIPEntry](s, ws, tableVIPs)
}
