package e2e

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Register operation kinds.
const (
	opRead  = "get"
	opWrite = "put"
	opCAS   = "cas"
)

// regInput is one register operation on a key: a read, a write of value,
// or a check-and-set from expect to value. Every write carries a value
// no other write uses, so a value names one version of the key and a CAS
// on the modify index a client read is a CAS on the value it read ("" is
// "the key does not exist").
type regInput struct {
	key    string
	kind   string
	value  string
	expect string
	// node is the agent the client talked to: for the report only.
	node string
}

// regOutput is what the operation returned: the value a read found, and
// whether a CAS was applied. unknown marks a write or CAS whose outcome
// the client never learned (a timeout, a lost connection): it may take
// effect at any time after its call, or never. index is the X-Herd-Index
// of the answer, for the report only.
type regOutput struct {
	value   string
	ok      bool
	unknown bool
	index   uint64
}

// registerModel is a set of independent registers, one per key, each
// starting empty: a linearizable KV store must explain every history of
// reads, writes and CAS with it.
var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(regInput).key
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() interface{} { return "" },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		in, out, cur := input.(regInput), output.(regOutput), state.(string)
		switch in.kind {
		case opWrite:
			return true, in.value
		case opCAS:
			matches := cur == in.expect
			if out.unknown {
				// Linearized here it took effect exactly if it matched;
				// an unknown CAS that never took effect is linearized
				// at the end of the history instead.
				if matches {
					return true, in.value
				}
				return true, cur
			}
			if out.ok {
				return matches, in.value
			}
			return !matches, cur
		}
		return out.value == cur, cur
	},
	DescribeOperation: func(input, output interface{}) string {
		return describe(input.(regInput), output.(regOutput))
	},
	DescribeState: func(state interface{}) string { return fmt.Sprintf("%q", state) },
}

func describe(in regInput, out regOutput) string {
	var s string
	switch in.kind {
	case opWrite:
		s = fmt.Sprintf("put(%s, %q)", in.key, in.value)
	case opCAS:
		s = fmt.Sprintf("cas(%s, %q -> %q) -> %v", in.key, in.expect, in.value, out.ok)
	default:
		s = fmt.Sprintf("get(%s) -> %q", in.key, out.value)
	}
	if out.unknown {
		s += " (outcome unknown)"
	}
	if in.node != "" {
		s += fmt.Sprintf(" via %s @%d", in.node, out.index)
	}
	return s
}

// explain describes where a history that is not linearizable stops being
// so: for each key whose history fails, the last operations of the
// longest linearizable prefix porcupine found, then the operations that
// could come next and none of which fits, with their times relative to
// the first call. It is what a CI log needs to tell a real stale read
// from a harness bug.
func explain(ops []porcupine.Operation) string {
	var b strings.Builder
	for _, part := range registerModel.Partition(ops) {
		res, info := porcupine.CheckOperationsVerbose(registerModel, part, time.Minute)
		if res != porcupine.Illegal {
			continue
		}
		var longest []porcupine.Operation
		for _, lins := range info.PartialLinearizationsOperations() {
			for _, lin := range lins {
				if len(lin) > len(longest) {
					longest = lin
				}
			}
		}
		t0 := part[0].Call
		for _, op := range part {
			t0 = min(t0, op.Call)
		}
		at := func(ns int64) string {
			if ns >= 1<<62 {
				return "never"
			}
			return fmt.Sprintf("%.3fs", float64(ns-t0)/1e9)
		}
		line := func(op porcupine.Operation) string {
			return fmt.Sprintf("    client %d [%s, %s] %s\n", op.ClientId, at(op.Call), at(op.Return),
				describe(op.Input.(regInput), op.Output.(regOutput)))
		}
		fmt.Fprintf(&b, "key %s: %d operations, %d linearized before the checker got stuck\n",
			part[0].Input.(regInput).key, len(part), len(longest))
		for _, op := range longest[max(0, len(longest)-6):] {
			b.WriteString(line(op))
		}
		// The operations not linearized, by call: those called before the
		// first of them returns are the ones that could come next.
		done := map[porcupine.Operation]bool{}
		for _, op := range longest {
			done[op] = true
		}
		var rest []porcupine.Operation
		for _, op := range part {
			if !done[op] {
				rest = append(rest, op)
			}
		}
		sort.Slice(rest, func(i, j int) bool { return rest[i].Call < rest[j].Call })
		if len(rest) == 0 {
			continue
		}
		firstRet := rest[0].Return
		for _, op := range rest {
			firstRet = min(firstRet, op.Return)
		}
		b.WriteString("  none of these fits next:\n")
		for i, op := range rest {
			if op.Call > firstRet || i >= 12 {
				break
			}
			b.WriteString(line(op))
		}
	}
	return b.String()
}
