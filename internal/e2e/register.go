package e2e

import (
	"fmt"

	"github.com/anishathalye/porcupine"
)

// regInput is one register operation on a key: a read, or a write of
// value.
type regInput struct {
	key   string
	write bool
	value string
}

// regOutput is what a read returned ("" when the key did not exist). A
// write has no output.
type regOutput struct {
	value string
}

// registerModel is a set of independent registers, one per key, each
// starting empty: a linearizable KV store must explain every history of
// reads and writes with it.
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
		in := input.(regInput)
		if in.write {
			return true, in.value
		}
		return output.(regOutput).value == state.(string), state
	},
	DescribeOperation: func(input, output interface{}) string {
		in := input.(regInput)
		if in.write {
			return fmt.Sprintf("put(%s, %q)", in.key, in.value)
		}
		return fmt.Sprintf("get(%s) -> %q", in.key, output.(regOutput).value)
	},
	DescribeState: func(state interface{}) string { return fmt.Sprintf("%q", state) },
}
