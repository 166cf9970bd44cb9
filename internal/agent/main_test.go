package agent_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test in this package stops its agents; none may leave a goroutine
// behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
