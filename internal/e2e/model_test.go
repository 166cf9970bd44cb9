package e2e

import (
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

func put(c int, v string, call, ret int64) porcupine.Operation {
	return porcupine.Operation{ClientId: c, Input: regInput{key: "k", kind: opWrite, value: v}, Output: regOutput{}, Call: call, Return: ret}
}

func get(c int, v string, call, ret int64) porcupine.Operation {
	return porcupine.Operation{ClientId: c, Input: regInput{key: "k", kind: opRead}, Output: regOutput{value: v}, Call: call, Return: ret}
}

func cas(c int, from, to string, ok bool, call, ret int64) porcupine.Operation {
	return porcupine.Operation{ClientId: c, Input: regInput{key: "k", kind: opCAS, expect: from, value: to}, Output: regOutput{ok: ok}, Call: call, Return: ret}
}

// TestRegisterModelCatchesAStaleRead: the checker accepts a linearizable
// history, refuses one where a read returns an older value after a newer
// write completed, and lets a write of unknown outcome take effect late.
func TestRegisterModelCatchesAStaleRead(t *testing.T) {
	ok := []porcupine.Operation{put(0, "a", 0, 10), get(1, "a", 11, 20), put(0, "b", 21, 30), get(1, "b", 31, 40)}
	if !porcupine.CheckOperations(registerModel, ok) {
		t.Fatal("a linearizable history was refused")
	}
	stale := []porcupine.Operation{put(0, "a", 0, 10), put(0, "b", 11, 20), get(1, "a", 21, 30)}
	if porcupine.CheckOperations(registerModel, stale) {
		t.Fatal("a stale read after a completed write was accepted")
	}
	if msg := explain(stale); !strings.Contains(msg, `get(k) -> "a"`) || !strings.Contains(msg, "none of these fits next") {
		t.Fatalf("the explanation does not name the stale read:\n%s", msg)
	}
	unknown := []porcupine.Operation{put(0, "a", 0, 10), put(2, "b", 11, 1<<62), get(1, "a", 21, 30), get(1, "b", 31, 40)}
	unknown[1].Output = regOutput{unknown: true}
	if !porcupine.CheckOperations(registerModel, unknown) {
		t.Fatal("a write of unknown outcome could not take effect late")
	}
	// Keys are independent.
	other := append(ok, porcupine.Operation{Input: regInput{key: "j", kind: opRead}, Output: regOutput{value: ""}, Call: 50, Return: 60})
	if !porcupine.CheckOperations(registerModel, other) {
		t.Fatal("an empty read of another key was refused")
	}
}

// TestRegisterModelCAS: a CAS succeeds only on the value it expects, a
// failed one changes nothing, and one of unknown outcome may or may not
// have taken effect.
func TestRegisterModelCAS(t *testing.T) {
	good := []porcupine.Operation{cas(0, "", "a", true, 0, 10), cas(1, "", "b", false, 11, 20), get(1, "a", 21, 30),
		cas(1, "a", "b", true, 31, 40), get(0, "b", 41, 50)}
	if !porcupine.CheckOperations(registerModel, good) {
		t.Fatal("a linearizable CAS history was refused")
	}
	// Two CAS from the same value cannot both succeed.
	both := []porcupine.Operation{put(0, "a", 0, 10), cas(1, "a", "b", true, 11, 20), cas(2, "a", "c", true, 21, 30)}
	if porcupine.CheckOperations(registerModel, both) {
		t.Fatal("two CAS from the same value both succeeded")
	}
	// A CAS refused while the value matched is a violation.
	refused := []porcupine.Operation{put(0, "a", 0, 10), cas(1, "a", "b", false, 11, 20)}
	if porcupine.CheckOperations(registerModel, refused) {
		t.Fatal("a CAS refused on a matching value was accepted")
	}
	// Unknown outcome: it may have happened (b is read) ...
	u := cas(1, "a", "b", false, 11, 1<<62)
	u.Output = regOutput{unknown: true}
	if !porcupine.CheckOperations(registerModel, []porcupine.Operation{put(0, "a", 0, 10), u, get(0, "b", 21, 30)}) {
		t.Fatal("a CAS of unknown outcome could not have taken effect")
	}
	// ... or not (a is still read later).
	if !porcupine.CheckOperations(registerModel, []porcupine.Operation{put(0, "a", 0, 10), u, get(0, "a", 21, 30)}) {
		t.Fatal("a CAS of unknown outcome had to take effect")
	}
}
