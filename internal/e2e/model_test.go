package e2e

import (
	"testing"

	"github.com/anishathalye/porcupine"
)

// TestRegisterModelCatchesAStaleRead: the checker accepts a linearizable
// history, refuses one where a read returns an older value after a newer
// write completed, and lets a write of unknown outcome take effect late.
func TestRegisterModelCatchesAStaleRead(t *testing.T) {
	put := func(c int, v string, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: c, Input: regInput{key: "k", write: true, value: v}, Output: regOutput{}, Call: call, Return: ret}
	}
	get := func(c int, v string, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: c, Input: regInput{key: "k"}, Output: regOutput{value: v}, Call: call, Return: ret}
	}
	ok := []porcupine.Operation{put(0, "a", 0, 10), get(1, "a", 11, 20), put(0, "b", 21, 30), get(1, "b", 31, 40)}
	if !porcupine.CheckOperations(registerModel, ok) {
		t.Fatal("a linearizable history was refused")
	}
	stale := []porcupine.Operation{put(0, "a", 0, 10), put(0, "b", 11, 20), get(1, "a", 21, 30)}
	if porcupine.CheckOperations(registerModel, stale) {
		t.Fatal("a stale read after a completed write was accepted")
	}
	unknown := []porcupine.Operation{put(0, "a", 0, 10), put(2, "b", 11, 1<<62), get(1, "a", 21, 30), get(1, "b", 31, 40)}
	if !porcupine.CheckOperations(registerModel, unknown) {
		t.Fatal("a write of unknown outcome could not take effect late")
	}
	// Keys are independent.
	other := append(ok, porcupine.Operation{Input: regInput{key: "j"}, Output: regOutput{value: ""}, Call: 50, Return: 60})
	if !porcupine.CheckOperations(registerModel, other) {
		t.Fatal("an empty read of another key was refused")
	}
}
